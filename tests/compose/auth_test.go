package compose

import (
	"context"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadWith loads docker-compose.yml as `docker compose` would with env in
// the shell.
func loadWith(t *testing.T, env ...string) *types.Project {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(out)))
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithInterpolation(true), cli.WithResolvedPaths(true), cli.WithEnv(env))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "docker-compose.yml parses under the Compose specification")
	return p
}

// environment is the value of key in service's environment, failing the
// test where it is not set.
func environment(t *testing.T, p *types.Project, service, key string) string {
	t.Helper()
	s, err := p.GetService(service)
	require.NoError(t, err, "service %s", service)
	v := s.Environment[key]
	require.NotNil(t, v, "%s sets %s", service, key)
	return *v
}

// TestComposeRequiresTokens checks that compose runs the API with tokens
// required (contract §7) and a demo administrator, that the shell can
// change both, and that the README gives the demo account it creates.
func TestComposeRequiresTokens(t *testing.T) {
	p := load(t)
	assert.Equal(t, "required", environment(t, p, "gateway", "AUTH_MODE"), "compose requires tokens by default")
	assert.Equal(t, "http://users-service:3005", environment(t, p, "gateway", "USERS_SERVICE_URL"))
	email := environment(t, p, "users-service", "ADMIN_EMAIL")
	password := environment(t, p, "users-service", "ADMIN_PASSWORD")
	_, err := mail.ParseAddress(email)
	require.NoError(t, err, "ADMIN_EMAIL %q is an e-mail address", email)
	// users-service refuses to start on a password shorter than 12.
	assert.GreaterOrEqual(t, len(password), 12, "ADMIN_PASSWORD is long enough for users-service")

	readme, err := os.ReadFile(filepath.Join(filepath.Dir(p.ComposeFiles[0]), "README.md"))
	require.NoError(t, err)
	for _, v := range []string{email, password} {
		assert.Contains(t, string(readme), "`"+v+"`", "the README gives the demo administrator's %q", v)
	}

	for _, tc := range []struct {
		name, env, service, key, want string
	}{
		{"auth off", "AUTH_MODE=off", "gateway", "AUTH_MODE", "off"},
		{"another admin e-mail", "ADMIN_EMAIL=root@example.org", "users-service", "ADMIN_EMAIL", "root@example.org"},
		{"another admin password", "ADMIN_PASSWORD=another long password", "users-service", "ADMIN_PASSWORD", "another long password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, environment(t, loadWith(t, tc.env), tc.service, tc.key), "the shell's %s wins", tc.env)
		})
	}
}
