package compose

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// Two deployment files name every participant explicitly (they are read by
// Docker and RabbitMQ, not by us): these tests keep them in step with
// saga/saga.conf. PostgreSQL's roles and databases and Prometheus's targets
// are generated from saga.conf as their containers start; these tests check
// the generators' wiring and output (database_test.go runs init.sh).
const (
	composeFile     = "docker-compose.yml"
	definitionsFile = "deploy/rabbitmq/definitions.json"
	prometheusFile  = "deploy/prometheus/prometheus.yml"
	targetsScript   = "deploy/prometheus/targets.sh"
	dashboardFile   = "deploy/grafana/dashboards/ordersaga.json"
	sagaConf        = "saga/saga.conf"
	// sagaConfMount is where the containers that generate from it find
	// saga.conf (init.sh's default SAGA_CONF).
	sagaConfMount = "/etc/ordersaga/saga.conf"
	// targetsFile is what targets.sh writes and Prometheus watches.
	targetsFile = "/prometheus/participants.json"
)

// gatewayService is the one service built from the repository that is not
// a participant.
const gatewayService = "gateway"

// consoleService is the operator console (sagactl console), built from the
// repository too, and not a participant either.
const consoleService = "console"

// deployment is what the deployment files say about the services.
type deployment struct {
	compose *types.Project
	// brokerUsers are the broker users with a password, brokerPermitted
	// those with permissions on vhost "/", both without administrators.
	brokerUsers, brokerPermitted map[string]bool
	// scraped is every Prometheus target with its service label: the
	// static ones and those targets.sh generates.
	scraped map[string]string
	// sdFiles are the file_sd files prometheus.yml reads.
	sdFiles   []string
	dashboard string
}

// readDeployment reads the deployment files, and generates the scrape
// targets from a saga.conf listing ps, as the container would.
func readDeployment(t *testing.T, ps []saga.Participant) deployment {
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

	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
			FileSDConfigs []struct {
				Files []string `yaml:"files"`
			} `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(read(prometheusFile), &prom), prometheusFile)
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				d.scraped[target] = st.Labels["service"]
			}
		}
		for _, sd := range sc.FileSDConfigs {
			d.sdFiles = append(d.sdFiles, sd.Files...)
		}
	}
	for target, service := range generatedTargets(t, root, ps) {
		d.scraped[target] = service
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
	for _, p := range ps {
		names[p.Name] = true
		for _, problem := range d.composeProblems(p) {
			report(composeFile, "%s", problem)
		}
		if !d.brokerUsers[p.Name] {
			report(definitionsFile, "no user %s with a password", p.Name)
		}
		if !d.brokerPermitted[p.Name] {
			report(definitionsFile, "no permissions on vhost / for user %s", p.Name)
		}
		target := fmt.Sprintf("%s:%d", p.Name, p.Port)
		if service, ok := d.scraped[target]; !ok || service != p.Name {
			report(prometheusFile, "no scrape target %s labelled service: %s", target, p.Name)
		}
	}
	for _, problem := range d.generatorProblems() {
		report(composeFile, "%s", problem)
	}
	if !slices.Contains(d.sdFiles, targetsFile) {
		report(prometheusFile, "does not read the generated targets %s (file_sd_configs)", targetsFile)
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
		if s.Build != nil && s.Build.Args["SERVICE"] != nil && name != gatewayService && name != consoleService && !names[name] {
			report(composeFile, "service %s is built from the repository but is not in saga/saga.conf", name)
		}
	}
	for user := range d.brokerUsers {
		if user != gatewayService && !names[user] {
			report(definitionsFile, "user %s is not in saga/saga.conf", user)
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

// generatorProblems is what the compose file lacks to generate, from
// saga.conf, the participants' databases (deploy/postgres/init.sh) and
// scrape targets (deploy/prometheus/targets.sh) as the containers start.
func (d deployment) generatorProblems() []string {
	var out []string
	for _, want := range []struct{ service, target, source string }{
		{"postgres", "/docker-entrypoint-initdb.d/10-databases.sh", "deploy/postgres/init.sh"},
		{"postgres", sagaConfMount, sagaConf},
		{"prometheus", "/etc/prometheus/targets.sh", targetsScript},
		{"prometheus", sagaConfMount, sagaConf},
	} {
		if !d.mounts(want.service)[want.target] {
			out = append(out, fmt.Sprintf("service %s does not mount %s at %s", want.service, want.source, want.target))
		}
	}
	run := "sh /etc/prometheus/targets.sh " + sagaConfMount + " >" + targetsFile + " && exec /bin/prometheus"
	if s, ok := d.compose.Services["prometheus"]; !ok || !strings.Contains(strings.Join(s.Entrypoint, " "), run) {
		out = append(out, "service prometheus does not start with: "+run)
	}
	return out
}

// mounts are the targets of service's read-only bind mounts whose source
// exists.
func (d deployment) mounts(service string) map[string]bool {
	out := map[string]bool{}
	for _, v := range d.compose.Services[service].Volumes {
		if _, err := os.Stat(v.Source); err == nil && v.Type == types.VolumeTypeBind && v.ReadOnly {
			out[v.Target] = true
		}
	}
	return out
}

// generatedTargets runs deploy/prometheus/targets.sh, as the prometheus
// container does, on a saga.conf listing ps, and returns its targets with
// their service label.
func generatedTargets(t *testing.T, root string, ps []saga.Participant) map[string]string {
	t.Helper()
	var conf strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&conf, "participant %s %d %s %s\n", p.Name, p.Port, p.Database, p.Timeline)
	}
	file := filepath.Join(t.TempDir(), "saga.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf.String()), 0o600))
	out, err := exec.Command("sh", filepath.Join(root, targetsScript), file).Output()
	require.NoError(t, err, targetsScript)
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	require.NoError(t, json.Unmarshal(out, &groups), "%s prints a file_sd target list: %s", targetsScript, out)
	targets := map[string]string{}
	for _, g := range groups {
		for _, target := range g.Targets {
			targets[target] = g.Labels["service"]
		}
	}
	return targets
}

// TestDeploymentListsEveryParticipant checks that every participant of
// saga/saga.conf is in every deployment file, and nothing else.
func TestDeploymentListsEveryParticipant(t *testing.T) {
	ps := saga.Participants()
	assert.Empty(t, readDeployment(t, ps).problems(ps), "the deployment files match saga/saga.conf")
}

// TestDeploymentCheckFindsWhatIsMissing proves the check above can fail:
// for every participant, each entry removed from a copy of the files is
// reported, and so is a participant added to the list only.
func TestDeploymentCheckFindsWhatIsMissing(t *testing.T) {
	ps := saga.Participants()
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
		{"generated scrape target", prometheusFile, func(d *deployment, p saga.Participant) {
			delete(d.scraped, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}},
	}
	for _, p := range ps {
		for _, tc := range cases {
			t.Run(p.Name+" without its "+tc.name, func(t *testing.T) {
				d := readDeployment(t, ps)
				tc.remove(&d, p)
				problems := d.problems(ps)
				assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
					return strings.HasPrefix(s, tc.file+": ") && strings.Contains(s, p.Name)
				}), "%s is reported in %s: %q", p.Name, tc.file, problems)
			})
		}
	}

	// Without its wiring, a generator would leave every participant out.
	unmount := func(service, target string) func(d *deployment) {
		return func(d *deployment) {
			s := d.compose.Services[service]
			s.Volumes = slices.DeleteFunc(slices.Clone(s.Volumes), func(v types.ServiceVolumeConfig) bool { return v.Target == target })
			d.compose.Services[service] = s
		}
	}
	for _, tc := range []struct {
		name, file, want string
		remove           func(d *deployment)
	}{
		{"postgres without init.sh", composeFile, "deploy/postgres/init.sh", unmount("postgres", "/docker-entrypoint-initdb.d/10-databases.sh")},
		{"postgres without saga.conf", composeFile, "service postgres does not mount saga/saga.conf", unmount("postgres", sagaConfMount)},
		{"prometheus without targets.sh", composeFile, targetsScript, unmount("prometheus", "/etc/prometheus/targets.sh")},
		{"prometheus without saga.conf", composeFile, "service prometheus does not mount saga/saga.conf", unmount("prometheus", sagaConfMount)},
		{"prometheus not generating", composeFile, "does not start with", func(d *deployment) {
			s := d.compose.Services["prometheus"]
			s.Entrypoint = nil
			d.compose.Services["prometheus"] = s
		}},
		{"prometheus not reading the targets", prometheusFile, targetsFile, func(d *deployment) { d.sdFiles = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := readDeployment(t, ps)
			tc.remove(&d)
			problems := d.problems(ps)
			assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
				return strings.HasPrefix(s, tc.file+": ") && strings.Contains(s, tc.want)
			}), "reported in %s: %q", tc.file, problems)
		})
	}

	added := saga.Participant{Name: "shipping-service", Port: 3009, Database: "shipping", Timeline: "/api/x/{id}/timeline"}
	t.Run("a participant added to the list only", func(t *testing.T) {
		more := append(slices.Clone(ps), added)
		problems := readDeployment(t, more).problems(more)
		for _, file := range []string{composeFile, definitionsFile} {
			assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
				return strings.HasPrefix(s, file+": ") && strings.Contains(s, "shipping")
			}), "the new participant is missing from %s: %q", file, problems)
		}
		// Its scrape target is generated from the list.
		assert.False(t, slices.ContainsFunc(problems, func(s string) bool { return strings.HasPrefix(s, prometheusFile) }), "%q", problems)
	})
	t.Run("a participant the generator did not see", func(t *testing.T) {
		more := append(slices.Clone(ps), added)
		problems := readDeployment(t, ps).problems(more)
		assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
			return strings.HasPrefix(s, prometheusFile+": ") && strings.Contains(s, "shipping-service:3009")
		}), "%q", problems)
	})
	t.Run("a participant removed from the list only", func(t *testing.T) {
		require.NotEmpty(t, ps)
		problems := readDeployment(t, ps[1:]).problems(ps[1:])
		for _, file := range []string{composeFile, definitionsFile} {
			assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
				return strings.HasPrefix(s, file+": ") && strings.Contains(s, "is not in saga/saga.conf")
			}), "%s still has %s: %q", file, ps[0].Name, problems)
		}
	})
	t.Run("a dashboard listing some participants", func(t *testing.T) {
		if len(ps) < 2 {
			t.Skip("needs two participants")
		}
		d := readDeployment(t, ps)
		d.dashboard = `{"panels":[{"targets":[{"expr":"up{service=\"` + ps[0].Name + `\"}"}]}]}`
		problems := d.problems(ps)
		assert.True(t, slices.ContainsFunc(problems, func(s string) bool {
			return strings.HasPrefix(s, dashboardFile+": ") && strings.Contains(s, ps[1].Name)
		}), "the dashboard's missing participant is reported: %q", problems)
	})
}
