package compose

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordersaga/ordersaga/saga"
)

// The deployment files name every participant explicitly (they are read by
// Docker, RabbitMQ, PostgreSQL and Prometheus, not by us); these tests keep
// them in step with saga/participants.tsv.
const (
	composeFile     = "docker-compose.yml"
	definitionsFile = "deploy/rabbitmq/definitions.json"
	initSQLFile     = "deploy/postgres/init.sql"
	prometheusFile  = "deploy/prometheus/prometheus.yml"
	dashboardFile   = "deploy/grafana/dashboards/ordersaga.json"
)

// gatewayService is the one service built from the repository that is not
// a participant.
const gatewayService = "gateway"

// deployment is what the deployment files say about the services.
type deployment struct {
	compose *types.Project
	// brokerUsers are the broker users with a password, brokerPermitted
	// those with permissions on vhost "/", both without administrators.
	brokerUsers, brokerPermitted map[string]bool
	initSQL                      string            // without comments
	scraped                      map[string]string // Prometheus target → its service label
	dashboard                    string
}

func readDeployment(t *testing.T) deployment {
	t.Helper()
	p := load(t)
	root := filepath.Dir(p.ComposeFiles[0])
	read := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err)
		return raw
	}
	d := deployment{compose: p, brokerUsers: map[string]bool{}, brokerPermitted: map[string]bool{}, scraped: map[string]string{}}

	var defs struct {
		Users []struct {
			Name     string   `json:"name"`
			Password string   `json:"password"`
			Tags     []string `json:"tags"`
		} `json:"users"`
		Permissions []struct {
			User      string `json:"user"`
			VHost     string `json:"vhost"`
			Configure string `json:"configure"`
			Write     string `json:"write"`
			Read      string `json:"read"`
		} `json:"permissions"`
	}
	require.NoError(t, json.Unmarshal(read(definitionsFile), &defs), definitionsFile)
	admins := map[string]bool{}
	for _, u := range defs.Users {
		if slices.Contains(u.Tags, "administrator") {
			admins[u.Name] = true
			continue
		}
		d.brokerUsers[u.Name] = u.Password != ""
	}
	for _, p := range defs.Permissions {
		if !admins[p.User] && p.VHost == "/" && p.Configure != "" && p.Write != "" && p.Read != "" {
			d.brokerPermitted[p.User] = true
		}
	}

	d.initSQL = stripComments(string(read(initSQLFile)))

	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(read(prometheusFile), &prom), prometheusFile)
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				d.scraped[target] = st.Labels["service"]
			}
		}
	}

	d.dashboard = string(read(dashboardFile))
	return d
}

// problems lists, one line each starting with the file, what the
// deployment lacks of participants ps, and what it has that ps lacks.
func (d deployment) problems(ps []saga.Participant) []string {
	var out []string
	report := func(file, format string, args ...any) {
		out = append(out, file+": "+fmt.Sprintf(format, args...))
	}
	names := map[string]bool{}
	databases := map[string]bool{}
	for _, p := range ps {
		names[p.Name], databases[p.Database] = true, true
		for _, problem := range d.composeProblems(p) {
			report(composeFile, "%s", problem)
		}
		if !d.brokerUsers[p.Name] {
			report(definitionsFile, "no user %s with a password", p.Name)
		}
		if !d.brokerPermitted[p.Name] {
			report(definitionsFile, "no permissions on vhost / for user %s", p.Name)
		}
		for _, problem := range sqlProblems(d.initSQL, p) {
			report(initSQLFile, "%s: %s", p.Name, problem)
		}
		target := fmt.Sprintf("%s:%d", p.Name, p.Port)
		if service, ok := d.scraped[target]; !ok || service != p.Name {
			report(prometheusFile, "no scrape target %s labelled service: %s", target, p.Name)
		}
	}
	// The dashboard aggregates by the service label and names no service;
	// should it list services one day, it must list them all.
	var shown, hidden []string
	for _, p := range ps {
		if strings.Contains(d.dashboard, p.Name) {
			shown = append(shown, p.Name)
		} else {
			hidden = append(hidden, p.Name)
		}
	}
	if len(shown) > 0 && len(hidden) > 0 {
		report(dashboardFile, "lists %s but not %s", strings.Join(shown, ", "), strings.Join(hidden, ", "))
	}

	// The other way round: what a removed or renamed participant left.
	for name, s := range d.compose.Services {
		if s.Build != nil && s.Build.Args["SERVICE"] != nil && name != gatewayService && !names[name] {
			report(composeFile, "service %s is built from the repository but is not in saga/participants.tsv", name)
		}
	}
	for user := range d.brokerUsers {
		if user != gatewayService && !names[user] {
			report(definitionsFile, "user %s is not in saga/participants.tsv", user)
		}
	}
	for _, m := range regexp.MustCompile(`(?i)\bCREATE\s+DATABASE\s+(\w+)`).FindAllStringSubmatch(d.initSQL, -1) {
		if !databases[m[1]] {
			report(initSQLFile, "database %s is not in saga/participants.tsv", m[1])
		}
	}
	slices.Sort(out)
	return out
}

// composeProblems is what the compose file lacks for participant p: its
// service, built from the repository, on its port, with its own broker user
// and database role, waiting for healthy infrastructure; and the gateway
// reaching it and waiting for it.
func (d deployment) composeProblems(p saga.Participant) []string {
	var out []string
	port := strconv.Itoa(p.Port)
	if s, ok := d.compose.Services[p.Name]; !ok {
		out = append(out, "no service "+p.Name)
	} else {
		env := func(key string) string {
			if v := s.Environment[key]; v != nil {
				return *v
			}
			return ""
		}
		if s.Build == nil || s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != p.Name {
			out = append(out, fmt.Sprintf("service %s is not built with SERVICE=%s", p.Name, p.Name))
		}
		if env("HTTP_ADDR") != ":"+port {
			out = append(out, fmt.Sprintf("service %s: HTTP_ADDR %q, want :%s", p.Name, env("HTTP_ADDR"), port))
		}
		if u, err := url.Parse(env("AMQP_URL")); err != nil || u.User.Username() != p.Name {
			out = append(out, fmt.Sprintf("service %s does not connect to the broker as user %s", p.Name, p.Name))
		}
		role := strings.ReplaceAll(p.Name, "-", "_")
		if u, err := url.Parse(env("DATABASE_URL")); err != nil || u.User.Username() != role || u.Host != "postgres:5432" || u.Path != "/"+p.Database {
			out = append(out, fmt.Sprintf("service %s: DATABASE_URL is not postgres://%s:…@postgres:5432/%s", p.Name, role, p.Database))
		}
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1:"+port+"/readyz") {
			out = append(out, fmt.Sprintf("service %s has no healthcheck on :%s/readyz", p.Name, port))
		}
		for _, dep := range []string{"postgres", "rabbitmq"} {
			if dependsOnHealthy(s, dep) == "" {
				out = append(out, fmt.Sprintf("service %s does not wait for a healthy %s", p.Name, dep))
			}
		}
	}
	gw, ok := d.compose.Services[gatewayService]
	if !ok {
		return append(out, "no service "+gatewayService)
	}
	want := fmt.Sprintf("http://%s:%s", p.Name, port)
	if v := gw.Environment[p.URLVar()]; v == nil || *v != want {
		out = append(out, fmt.Sprintf("the gateway has no %s=%s", p.URLVar(), want))
	}
	if dependsOnHealthy(gw, p.Name) == "" {
		out = append(out, fmt.Sprintf("the gateway does not wait for a healthy %s", p.Name))
	}
	return out
}

// sqlProblems is what init.sql lacks for participant p: its role, its
// database owned by that role and closed to PUBLIC.
func sqlProblems(sql string, p saga.Participant) []string {
	role, db := strings.ReplaceAll(p.Name, "-", "_"), p.Database
	var out []string
	for _, stmt := range []struct{ what, pattern string }{
		{"no login role " + role, `CREATE\s+ROLE\s+` + role + `\s+(WITH\s+)?LOGIN\b`},
		{"no database " + db + " owned by " + role, `CREATE\s+DATABASE\s+` + db + `\s+(WITH\s+)?OWNER\s*=?\s*` + role + `\b`},
		{"database " + db + " is not closed to PUBLIC", `REVOKE\s+ALL\s+ON\s+DATABASE\s+` + db + `\s+FROM\s+PUBLIC\b`},
	} {
		if !regexp.MustCompile(`(?i)\b` + stmt.pattern).MatchString(sql) {
			out = append(out, stmt.what)
		}
	}
	return out
}

// TestDeploymentListsEveryParticipant checks that every participant of
// saga/participants.tsv is in every deployment file, and nothing else.
func TestDeploymentListsEveryParticipant(t *testing.T) {
	assert.Empty(t, readDeployment(t).problems(saga.Participants()),
		"the deployment files match saga/participants.tsv")
}

// TestDeploymentCheckFindsWhatIsMissing proves the check above can fail:
// for every participant, each entry removed from a copy of the files is
// reported, and so is a participant added to the list only.
func TestDeploymentCheckFindsWhatIsMissing(t *testing.T) {
	ps := saga.Participants()
	removeLines := func(sql, pattern string) string {
		return regexp.MustCompile(`(?im)^.*`+pattern+`.*$`).ReplaceAllString(sql, "")
	}
	cases := []struct {
		name   string
		file   string
		remove func(d *deployment, p saga.Participant)
	}{
		// Each case edits a fresh copy of the files, read by readDeployment.
		{"compose service", composeFile, func(d *deployment, p saga.Participant) { delete(d.compose.Services, p.Name) }},
		{"compose service on another port", composeFile, func(d *deployment, p saga.Participant) {
			other := ":1"
			d.compose.Services[p.Name].Environment["HTTP_ADDR"] = &other
		}},
		{"gateway's URL of it", composeFile, func(d *deployment, p saga.Participant) {
			delete(d.compose.Services[gatewayService].Environment, p.URLVar())
		}},
		{"gateway waiting for it", composeFile, func(d *deployment, p saga.Participant) {
			delete(d.compose.Services[gatewayService].DependsOn, p.Name)
		}},
		{"broker user", definitionsFile, func(d *deployment, p saga.Participant) { delete(d.brokerUsers, p.Name) }},
		{"broker permissions", definitionsFile, func(d *deployment, p saga.Participant) { delete(d.brokerPermitted, p.Name) }},
		{"database role", initSQLFile, func(d *deployment, p saga.Participant) {
			d.initSQL = removeLines(d.initSQL, `CREATE ROLE `+strings.ReplaceAll(p.Name, "-", "_")+`\b`)
		}},
		{"database", initSQLFile, func(d *deployment, p saga.Participant) {
			d.initSQL = removeLines(d.initSQL, `CREATE DATABASE `+p.Database+`\b`)
		}},
		{"database closed to PUBLIC", initSQLFile, func(d *deployment, p saga.Participant) {
			d.initSQL = removeLines(d.initSQL, `REVOKE ALL ON DATABASE `+p.Database+`\b`)
		}},
		{"scrape target", prometheusFile, func(d *deployment, p saga.Participant) {
			delete(d.scraped, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}},
	}
	for _, p := range ps {
		for _, tc := range cases {
			t.Run(p.Name+" without its "+tc.name, func(t *testing.T) {
				d := readDeployment(t)
				tc.remove(&d, p)
				problems := d.problems(ps)
				assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
					return strings.HasPrefix(s, tc.file+": ") && strings.Contains(s, p.Name)
				}), "%s is reported in %s: %q", p.Name, tc.file, problems)
			})
		}
	}

	t.Run("a participant added to the list only", func(t *testing.T) {
		added := saga.Participant{Name: "inventory-service", Port: 3003, Database: "inventory", Timeline: "/api/x/{id}/timeline"}
		problems := readDeployment(t).problems(append(slices.Clone(ps), added))
		for _, file := range []string{composeFile, definitionsFile, initSQLFile, prometheusFile} {
			assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
				return strings.HasPrefix(s, file+": ") && strings.Contains(s, "inventory")
			}), "the new participant is missing from %s: %q", file, problems)
		}
	})
	t.Run("a participant removed from the list only", func(t *testing.T) {
		require.NotEmpty(t, ps)
		problems := readDeployment(t).problems(ps[1:])
		for _, file := range []string{composeFile, definitionsFile, initSQLFile} {
			assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
				return strings.HasPrefix(s, file+": ") && strings.Contains(s, "is not in saga/participants.tsv")
			}), "%s still has %s: %q", file, ps[0].Name, problems)
		}
	})
	t.Run("a dashboard listing some participants", func(t *testing.T) {
		if len(ps) < 2 {
			t.Skip("needs two participants")
		}
		d := readDeployment(t)
		d.dashboard = `{"panels":[{"targets":[{"expr":"up{service=\"` + ps[0].Name + `\"}"}]}]}`
		problems := d.problems(ps)
		assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
			return strings.HasPrefix(s, dashboardFile+": ") && strings.Contains(s, ps[1].Name)
		}), "the dashboard's missing participant is reported: %q", problems)
	})
}
