// Package compose checks docker-compose.yml, which cannot be run here (no
// Docker engine), against the contract: it must parse as the Compose
// specification and configure every service as contract.md §1 says. The
// credentials it gives the services (deploy/rabbitmq, deploy/postgres) are
// applied to the local servers, under throwaway names, and exercised.
package compose

import (
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordersaga/ordersaga/saga"
)

// load loads docker-compose.yml with nothing set in the shell: its
// defaults.
func load(t *testing.T) *types.Project {
	t.Helper()
	return loadWith(t)
}

func TestComposeMatchesTheContract(t *testing.T) {
	p := load(t)
	for _, name := range []string{"postgres", "rabbitmq", "gateway", "order-service", "payment-service"} {
		_, err := p.GetService(name)
		require.NoError(t, err, "service %s", name)
	}

	cases := []struct {
		service string
		port    string
		env     map[string]string // value, or "" for "set to anything"
		db      string
	}{
		{"gateway", "3000", map[string]string{
			"HTTP_ADDR": ":3000", "AMQP_URL": "", "LOG_LEVEL": "",
			"ORDER_SERVICE_URL": "http://order-service:3001", "PAYMENT_SERVICE_URL": "http://payment-service:3002",
		}, ""},
		{"order-service", "3001", map[string]string{
			"HTTP_ADDR": ":3001", "AMQP_URL": "", "LOG_LEVEL": "", "DATABASE_URL": "", "ORDER_PAYMENT_TIMEOUT": "2m",
		}, "/orders"},
		{"payment-service", "3002", map[string]string{
			"HTTP_ADDR": ":3002", "AMQP_URL": "", "LOG_LEVEL": "", "DATABASE_URL": "",
			"PAYMENT_LATENCY": "0s", "PAYMENT_DECLINE_RATE": "0", "PAYMENT_LIMIT": "1000000",
		}, "/payments"},
	}
	for _, tc := range cases {
		t.Run(tc.service, func(t *testing.T) {
			s, err := p.GetService(tc.service)
			require.NoError(t, err)
			for k, want := range tc.env {
				v, ok := s.Environment[k]
				require.True(t, ok && v != nil, "%s sets %s", tc.service, k)
				if want != "" {
					assert.Equal(t, want, *v, "%s: %s has the contract's default", tc.service, k)
				}
			}
			assert.True(t, strings.HasPrefix(*s.Environment["AMQP_URL"], "amqp://"), "AMQP_URL is an AMQP URL")
			amqpURL, err := url.Parse(*s.Environment["AMQP_URL"])
			require.NoError(t, err)
			assert.Equal(t, tc.service, amqpURL.User.Username(), "%s connects to the broker as its own user", tc.service)
			assert.Equal(t, "rabbitmq:5672", amqpURL.Host)
			if tc.db != "" {
				assert.Contains(t, *s.Environment["DATABASE_URL"], "@postgres:5432"+tc.db, "its own database")
				dbURL, err := url.Parse(*s.Environment["DATABASE_URL"])
				require.NoError(t, err)
				assert.Equal(t, strings.ReplaceAll(tc.service, "-", "_"), dbURL.User.Username(),
					"%s connects to its database as its own role", tc.service)
			}
			require.NotNil(t, s.HealthCheck, "%s has a healthcheck", tc.service)
			assert.Equal(t, []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:" + tc.port + "/readyz"},
				[]string(s.HealthCheck.Test), "%s is healthy when its /readyz answers 200", tc.service)
			require.NotNil(t, s.Build, "%s is built from the repository", tc.service)
			assert.Equal(t, "deploy/Dockerfile", filepath.ToSlash(mustRel(t, s.Build.Context, s.Build.Dockerfile)))
			require.NotNil(t, s.Build.Args["SERVICE"])
			assert.Equal(t, tc.service, *s.Build.Args["SERVICE"])
			assert.Equal(t, "rabbitmq", dependsOnHealthy(s, "rabbitmq"), "%s waits for a healthy broker", tc.service)
		})
	}
	for _, name := range []string{"order-service", "payment-service"} {
		s, _ := p.GetService(name)
		assert.Equal(t, "postgres", dependsOnHealthy(s, "postgres"), "%s waits for a healthy database", name)
	}
	for _, name := range []string{"postgres", "rabbitmq"} {
		s, _ := p.GetService(name)
		assert.NotNil(t, s.HealthCheck, "%s has a healthcheck", name)
	}
	gw, _ := p.GetService("gateway")
	for _, name := range []string{"order-service", "payment-service"} {
		assert.Equal(t, name, dependsOnHealthy(gw, name), "the gateway waits for a healthy %s", name)
	}
	require.NotEmpty(t, gw.Ports)
	assert.Equal(t, uint32(3000), gw.Ports[0].Target)
	assert.Equal(t, "3000", gw.Ports[0].Published)
}

func dependsOnHealthy(s types.ServiceConfig, dep string) string {
	if d, ok := s.DependsOn[dep]; ok && d.Condition == types.ServiceConditionHealthy {
		return dep
	}
	return ""
}

func mustRel(t *testing.T, context, dockerfile string) string {
	t.Helper()
	if !filepath.IsAbs(dockerfile) {
		return dockerfile
	}
	rel, err := filepath.Rel(context, dockerfile)
	require.NoError(t, err)
	return rel
}

// TestMonitoringMatchesTheServices checks the Prometheus scrape targets
// against the compose services and every metric the Grafana dashboard
// queries against the metric names the code defines.
func TestMonitoringMatchesTheServices(t *testing.T) {
	p := load(t)
	root := filepath.Dir(p.ComposeFiles[0])
	for _, name := range []string{"prometheus", "grafana"} {
		_, err := p.GetService(name)
		require.NoError(t, err, "service %s", name)
	}

	raw, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	require.NoError(t, err)
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &prom))
	// The services' HTTP_ADDR ports, and the broker's prometheus plugin.
	ports := map[string]string{"gateway": "3000", "rabbitmq": "15692"}
	for _, p := range saga.Participants() {
		ports[p.Name] = strconv.Itoa(p.Port)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	// The participants' targets, as the container generates them.
	for target := range generatedTargets(t, root, saga.Participants()) {
		targets = append(targets, target)
	}
	scraped := map[string]bool{}
	for _, target := range targets {
		host, port, ok := strings.Cut(target, ":")
		require.True(t, ok, "target %s has a port", target)
		_, err := p.GetService(host)
		require.NoError(t, err, "scrape target %s is a compose service", target)
		assert.Equal(t, ports[host], port, "scrape target %s uses the service's metrics port", target)
		scraped[host] = true
	}
	for svc := range ports {
		assert.True(t, scraped[svc], "%s is scraped", svc)
	}

	raw, err = os.ReadFile(filepath.Join(root, "deploy/grafana/dashboards/ordersaga.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	defined := definedMetrics(t, root)
	used := regexp.MustCompile(`ordersaga_[a-z_]+`)
	n := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			for _, m := range used.FindAllString(target.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				assert.True(t, defined[base], "the dashboard queries %s, which no service defines", m)
				n++
			}
		}
	}
	assert.Positive(t, n, "the dashboard queries ordersaga metrics")
}

// definedMetrics collects the metric names declared in the Go code.
func definedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	decl := regexp.MustCompile(`Name:\s+"(ordersaga_[a-z_]+)"`)
	for _, dir := range []string{"apps", "libs"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllSubmatch(src, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.NotEmpty(t, names)
	return names
}
