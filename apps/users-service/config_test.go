package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(envOf(nil))
	require.NoError(t, err, "every variable has a working default")
	assert.Equal(t, "users-service", c.Name)
	assert.Equal(t, ":3005", c.HTTPAddr)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/users?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, 15*time.Minute, c.TokenTTL)
	assert.Empty(t, c.AdminEmail)

	key := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(key, []byte("x"), 0o600))
	c, err = parseConfig(envOf(map[string]string{"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "twelve chars",
		"TOKEN_TTL": "1h", "JWT_SIGNING_KEY_FILE": key}))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, c.TokenTTL)
	assert.Equal(t, key, c.SigningKeyFile)

	cases := []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"token lifetime over an hour", map[string]string{"TOKEN_TTL": "2h"}, "TOKEN_TTL"},
		{"token lifetime under a minute", map[string]string{"TOKEN_TTL": "30s"}, "TOKEN_TTL"},
		{"admin e-mail without password", map[string]string{"ADMIN_EMAIL": "root@example.com"}, "ADMIN_PASSWORD"},
		{"admin password too short", map[string]string{"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "short"}, "ADMIN_PASSWORD"},
		{"signing key file missing", map[string]string{"JWT_SIGNING_KEY_FILE": "/nonexistent/key.pem"}, "JWT_SIGNING_KEY_FILE"},
		{"previous key file missing", map[string]string{"JWT_PREVIOUS_KEY_FILE": "/nonexistent/key.pem"}, "JWT_PREVIOUS_KEY_FILE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(envOf(tc.env))
			assert.ErrorContains(t, err, tc.key, "rejected, naming the variable")
			if tc.env["ADMIN_PASSWORD"] != "" {
				assert.NotContains(t, err.Error(), tc.env["ADMIN_PASSWORD"], "never the password")
			}
		})
	}
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	require.NoError(t, run(ctx, []string{"-h"}, env, &stdout), "exit 0")
	out := stdout.String()
	assert.True(t, strings.HasPrefix(out, "users-service owns"), out)
	for _, want := range []string{"Usage: users-service", ":3005", "users?sslmode=disable", "ADMIN_EMAIL", "ADMIN_PASSWORD",
		"JWT_SIGNING_KEY_FILE", "JWT_PREVIOUS_KEY_FILE", "TOKEN_TTL", "15m"} {
		assert.Contains(t, out, want)
	}
}
