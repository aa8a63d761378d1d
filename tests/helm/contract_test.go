package helm

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// service is a process of contract §1's first table that serves HTTP.
type service struct {
	name     string
	port     int
	database string // "" for the gateway
}

// variable is a row of contract §1's table of variables.
type variable struct {
	name   string
	usedBy string // as written: "all", "all services", a service's name, ...
	unset  bool   // its default is "unset": it may be absent
}

// contract is what the chart must provide: contract §1 (docs/contract.md,
// read as written, so a new row fails this test until the chart has it)
// and the participants of saga/saga.conf.
type contract struct {
	services     []service
	variables    []variable
	participants map[string]int // saga.conf: name → port
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	tableRow   = regexp.MustCompile(`^\|(.+)\|\s*$`)
	portColumn = regexp.MustCompile("^`:(\\d+)`$")
	dbInRole   = regexp.MustCompile("database `([a-z_]+)`")
)

// readContract reads §1 of docs/contract.md and saga/saga.conf.
func readContract(t *testing.T) *contract {
	t.Helper()
	section := contractSection(t, "## 1. ")
	c := &contract{participants: readParticipants(t)}
	for _, line := range strings.Split(section, "\n") {
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(m[1], "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 3 || strings.HasPrefix(cells[0], "---") || !strings.HasPrefix(cells[0], "`") {
			continue
		}
		if pm := portColumn.FindStringSubmatch(cells[2]); pm != nil {
			port, _ := strconv.Atoi(pm[1])
			s := service{name: strings.Trim(cells[0], "`"), port: port}
			if dm := dbInRole.FindStringSubmatch(cells[1]); dm != nil {
				s.database = dm[1]
			}
			c.services = append(c.services, s)
			continue
		}
		if cells[2] == "—" {
			continue // a binary without HTTP_ADDR (sagactl)
		}
		for _, v := range codeSpan.FindAllStringSubmatch(cells[0], -1) {
			c.variables = append(c.variables, variable{
				name: v[1], usedBy: cells[1], unset: strings.HasPrefix(cells[2], "unset"),
			})
		}
	}
	if len(c.services) < 3 || len(c.variables) < 10 {
		t.Fatalf("contract §1: read %d services and %d variables; has its table's layout changed?", len(c.services), len(c.variables))
	}
	return c
}

// contractSection is the text of the section of docs/contract.md whose
// heading starts with heading, up to the next "## ".
func contractSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading)
	if start < 0 {
		t.Fatalf("docs/contract.md: no section %q", heading)
	}
	rest := text[start+1:]
	if end := strings.Index(rest[len(heading):], "\n## "); end >= 0 {
		rest = rest[:len(heading)+end]
	}
	return rest
}

// readParticipants reads the "participant NAME PORT DATABASE TIMELINE"
// lines of saga/saga.conf: name → port.
func readParticipants(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "saga", "saga.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "participant" {
			port, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatalf("saga.conf: %q: bad port", sc.Text())
			}
			out[fields[1]] = port
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("saga.conf: no participant")
	}
	return out
}

// usedBy is the set of services that read v, from its "used by" column.
func (c *contract) usedBy(t *testing.T, v variable) []string {
	var out []string
	for _, s := range c.services {
		switch {
		case v.usedBy == "all" || v.usedBy == "all services":
			out = append(out, s.name)
		case strings.HasPrefix(v.usedBy, "every service with a database"):
			if s.database != "" {
				out = append(out, s.name)
			}
		case v.usedBy == s.name:
			out = append(out, s.name)
		}
	}
	if len(out) == 0 {
		t.Errorf("contract §1: variable %s is used by %q: no service of the table matches", v.name, v.usedBy)
	}
	return out
}
