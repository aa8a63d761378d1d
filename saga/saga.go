// Package saga lists the saga's participants: the one place that names
// them (participants.tsv), from which the Makefile, the local runner, the
// end-to-end harness and the gateway learn who takes part. libs/ knows no
// participant; this package is where they are known.
package saga

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

//go:embed participants.tsv
var table string

var (
	validName     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	validDatabase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Participant is one service of the saga with its own database.
type Participant struct {
	// Name is the service's name: its binary, its app_id, the prefix of
	// its queues and of its timeline entries.
	Name string
	// Port is its default HTTP port.
	Port int
	// Database is the name of its own database.
	Database string
	// Timeline is the path of its timeline of one order's saga, with {id}
	// where the order id goes (e.g. /api/orders/{id}/timeline).
	Timeline string
}

// TimelinePath is the path of the participant's timeline of order id.
func (p Participant) TimelinePath(id string) string {
	return strings.Replace(p.Timeline, "{id}", id, 1)
}

// URLVar is the variable through which the gateway (and other callers)
// reach the participant, e.g. ORDER_SERVICE_URL.
func (p Participant) URLVar() string {
	return strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")) + "_URL"
}

// DefaultURL is the participant's address on a developer machine.
func (p Participant) DefaultURL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.Port) }

// Participants returns every participant, in the order of the table.
func Participants() []Participant {
	ps, err := parse(table)
	if err != nil {
		// The table is embedded at build time; its test keeps it valid.
		panic(err)
	}
	return ps
}

// Lookup returns the participant called name.
func Lookup(name string) (Participant, bool) {
	for _, p := range Participants() {
		if p.Name == name {
			return p, true
		}
	}
	return Participant{}, false
}

func parse(s string) ([]Participant, error) {
	var ps []Participant
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("participants.tsv:%d: want name, port, database, timeline; got %q", i+1, line)
		}
		// The name ends up in shell scripts, a pkill pattern, variable
		// names and compose service names; the database in SQL.
		if !validName.MatchString(f[0]) {
			return nil, fmt.Errorf("participants.tsv:%d: bad name %q: want lower-case letters, digits and -", i+1, f[0])
		}
		port, err := strconv.Atoi(f[1])
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("participants.tsv:%d: bad port %q", i+1, f[1])
		}
		if !validDatabase.MatchString(f[2]) {
			return nil, fmt.Errorf("participants.tsv:%d: bad database %q: want lower-case letters, digits and _", i+1, f[2])
		}
		if !strings.HasPrefix(f[3], "/") || strings.Count(f[3], "{id}") != 1 {
			return nil, fmt.Errorf("participants.tsv:%d: bad timeline %q: want a path with {id} once", i+1, f[3])
		}
		ps = append(ps, Participant{Name: f[0], Port: port, Database: f[2], Timeline: f[3]})
	}
	return ps, nil
}
