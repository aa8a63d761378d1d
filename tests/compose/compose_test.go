// Package compose checks docker-compose.yml, which cannot be run here (no
// Docker engine), against the contract: it must parse as the Compose
// specification and configure every service as contract.md §1 says.
package compose

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func load(t *testing.T) *types.Project {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(out)))
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithInterpolation(true), cli.WithResolvedPaths(true))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "docker-compose.yml parses under the Compose specification")
	return p
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
			if tc.db != "" {
				assert.Contains(t, *s.Environment["DATABASE_URL"], "@postgres:5432"+tc.db, "its own database")
			}
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
