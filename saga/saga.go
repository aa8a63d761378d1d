// Package saga reads saga.conf, the one place that names the saga's
// participants, what each consumes and who publishes where. The Makefile,
// the local runner, the end-to-end harness, the deployment and the gateway
// learn from it who takes part; every queue, binding and service's
// declarations derive from it (topology.go). libs/ knows no participant;
// this package is where they are known.
package saga

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ordersaga/ordersaga/libs/events"
)

//go:embed saga.conf
var conf string

// file is the name errors give the configuration.
const file = "saga.conf"

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
	// where the order id goes (e.g. /api/orders/{id}/timeline), or
	// NoTimeline for a service that takes no part in an order's saga.
	Timeline string
	// Unmerged marks a timeline that the gateway's merged timeline of an
	// order leaves out (saga.conf's flag unmerged): that of a service that
	// only listens to the saga's outcomes (notification-service), whose
	// being down must not fail an order's timeline. The console reads it.
	Unmerged bool
}

// Unmerged is the flag, after TIMELINE, of a timeline that the gateway
// does not merge (Participant.Unmerged).
const Unmerged = "unmerged"

// MergedTimeline is the Timeline that the gateway merges into an order's:
// NoTimeline for an unmerged one.
func (p Participant) MergedTimeline() string {
	if p.Unmerged {
		return NoTimeline
	}
	return p.Timeline
}

// NoTimeline is the TIMELINE of a participant that keeps no timeline of
// an order's saga (users-service): nobody asks it for one, yet it is still
// deployed, given a database and checked for readiness like the others.
const NoTimeline = "-"

// HasTimeline reports whether the participant answers an order's timeline.
func (p Participant) HasTimeline() bool {
	return p.Timeline != NoTimeline
}

// TimelinePath is the path of the participant's timeline of order id; ""
// when it has none.
func (p Participant) TimelinePath(id string) string {
	if !p.HasTimeline() {
		return ""
	}
	return strings.Replace(p.Timeline, "{id}", id, 1)
}

// URLVar is the variable through which the gateway (and other callers)
// reach the participant, e.g. ORDER_SERVICE_URL.
func (p Participant) URLVar() string {
	return strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")) + "_URL"
}

// DefaultURL is the participant's address on a developer machine.
func (p Participant) DefaultURL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.Port) }

// table is what saga.conf says.
type table struct {
	participants  []Participant
	subscriptions []Subscription
	publishers    map[string]string // exchange → its publisher
}

// the is saga.conf, parsed once: it is embedded at build time and its
// test keeps it valid, so a failure here is a build defect.
var the = func() table {
	s, err := parse(conf)
	if err != nil {
		panic(err)
	}
	return s
}()

// Participants returns every participant, in the order of saga.conf.
func Participants() []Participant { return slices.Clone(the.participants) }

// Lookup returns the participant called name.
func Lookup(name string) (Participant, bool) {
	i := slices.IndexFunc(the.participants, func(p Participant) bool { return p.Name == name })
	if i < 0 {
		return Participant{}, false
	}
	return the.participants[i], true
}

// parse reads a saga.conf; each error names the line it is about.
func parse(text string) (table, error) {
	s := table{publishers: map[string]string{}}
	seen := map[string]int{} // "kind value" → the line that took it
	taken := func(n int, kind, value string) error {
		key := kind + " " + value
		if first, ok := seen[key]; ok {
			return fmt.Errorf("%s:%d: %s %s already on line %d", file, n, kind, value, first)
		}
		seen[key] = n
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "participant":
			var p Participant
			if p, err = parseParticipant(n, f[1:]); err == nil {
				err = firstErr(taken(n, "participant", p.Name), taken(n, "port", strconv.Itoa(p.Port)), taken(n, "database", p.Database))
				s.participants = append(s.participants, p)
			}
		case "consumes":
			var sub Subscription
			if sub, err = parseConsumes(n, f[1:]); err == nil {
				err = taken(n, "queue", sub.Queue)
				s.subscriptions = append(s.subscriptions, sub)
			}
		case "publishes":
			err = parsePublishes(n, f[1:], s.publishers, taken)
		default:
			err = fmt.Errorf("%s:%d: unknown line kind %q: want participant, consumes or publishes", file, n, f[0])
		}
		if err != nil {
			return table{}, err
		}
	}
	return s, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkName checks a service's name: it ends up in shell scripts, a pkill
// pattern, variable names, compose service names and queue names.
func checkName(n int, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%s:%d: bad name %q: want lower-case letters, digits and -", file, n, name)
	}
	return nil
}

func parseParticipant(n int, f []string) (Participant, error) {
	if len(f) != 4 && len(f) != 5 {
		return Participant{}, fmt.Errorf("%s:%d: want participant NAME PORT DATABASE TIMELINE [%s]; got %d fields after participant", file, n, Unmerged, len(f))
	}
	if err := checkName(n, f[0]); err != nil {
		return Participant{}, err
	}
	port, err := strconv.Atoi(f[1])
	if err != nil || port < 1 || port > 65535 {
		return Participant{}, fmt.Errorf("%s:%d: bad port %q", file, n, f[1])
	}
	// The database (and the role derived from the name) go into SQL.
	if !validDatabase.MatchString(f[2]) {
		return Participant{}, fmt.Errorf("%s:%d: bad database %q: want lower-case letters, digits and _", file, n, f[2])
	}
	if f[3] != NoTimeline && (!strings.HasPrefix(f[3], "/") || strings.Count(f[3], "{id}") != 1) {
		return Participant{}, fmt.Errorf("%s:%d: bad timeline %q: want a path with {id} once, or %s for none", file, n, f[3], NoTimeline)
	}
	p := Participant{Name: f[0], Port: port, Database: f[2], Timeline: f[3]}
	if len(f) == 5 {
		if f[4] != Unmerged || !p.HasTimeline() {
			return Participant{}, fmt.Errorf("%s:%d: bad flag %q after the timeline: want %s, after a path", file, n, f[4], Unmerged)
		}
		p.Unmerged = true
	}
	return p, nil
}

func parseConsumes(n int, f []string) (Subscription, error) {
	if len(f) < 3 {
		return Subscription{}, fmt.Errorf("%s:%d: want consumes NAME QUEUE TYPE...; got %d fields after consumes", file, n, len(f))
	}
	if err := checkName(n, f[0]); err != nil {
		return Subscription{}, err
	}
	sub := Subscription{Consumer: f[0], Queue: f[1]}
	if rest, ok := strings.CutPrefix(sub.Queue, sub.Consumer+"."); !ok || !validName.MatchString(rest) {
		return Subscription{}, fmt.Errorf("%s:%d: bad queue %q: want %s.<source> (lower-case letters, digits and -)", file, n, sub.Queue, sub.Consumer)
	}
	for _, typ := range f[2:] {
		if !events.Known(typ) {
			return Subscription{}, fmt.Errorf("%s:%d: %s binds %q, not a message type of the contract (no wildcards)", file, n, sub.Queue, typ)
		}
		if slices.Contains(sub.Types, typ) {
			return Subscription{}, fmt.Errorf("%s:%d: %s binds %s twice", file, n, sub.Queue, typ)
		}
		sub.Types = append(sub.Types, typ)
	}
	return sub, nil
}

func parsePublishes(n int, f []string, publishers map[string]string, taken func(int, string, string) error) error {
	if len(f) < 2 {
		return fmt.Errorf("%s:%d: want publishes NAME EXCHANGE...; got %d fields after publishes", file, n, len(f))
	}
	if err := checkName(n, f[0]); err != nil {
		return err
	}
	for _, exchange := range f[1:] {
		if !slices.ContainsFunc(events.Exchanges(), func(e events.Exchange) bool { return e.Name == exchange }) {
			return fmt.Errorf("%s:%d: %q is not an exchange of the contract", file, n, exchange)
		}
		// One publisher per exchange: it alone declares it.
		if err := taken(n, "publisher of", exchange); err != nil {
			return err
		}
		publishers[exchange] = f[0]
	}
	return nil
}
