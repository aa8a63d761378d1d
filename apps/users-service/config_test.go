package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/settings/settingstest"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(settingstest.Env(nil))
	require.NoError(t, err, "every variable has a working default")
	assert.Equal(t, "users-service", c.Name)
	assert.Equal(t, ":3005", c.HTTPAddr)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/users?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, 15*time.Minute, c.TokenTTL)
	assert.Empty(t, c.AdminEmail)

	key := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(key, []byte("x"), 0o600))
	c, err = parseConfig(settingstest.Env(map[string]string{"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "twelve chars",
		"TOKEN_TTL": "1h", "JWT_SIGNING_KEY_FILE": key}))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, c.TokenTTL)
	assert.Equal(t, key, c.SigningKeyFile)

	settingstest.Rejects(t, parseConfig, []settingstest.Rejection{
		{Name: "token lifetime over an hour", Env: map[string]string{"TOKEN_TTL": "2h"}, Key: "TOKEN_TTL"},
		{Name: "token lifetime under a minute", Env: map[string]string{"TOKEN_TTL": "30s"}, Key: "TOKEN_TTL"},
		{Name: "admin e-mail without password", Env: map[string]string{"ADMIN_EMAIL": "root@example.com"}, Key: "ADMIN_PASSWORD"},
		{Name: "admin password too short", Env: map[string]string{"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "short"},
			Key: "ADMIN_PASSWORD", Secret: "short"},
		{Name: "signing key file missing", Env: map[string]string{"JWT_SIGNING_KEY_FILE": "/nonexistent/key.pem"}, Key: "JWT_SIGNING_KEY_FILE"},
		{Name: "previous key file missing", Env: map[string]string{"JWT_PREVIOUS_KEY_FILE": "/nonexistent/key.pem"}, Key: "JWT_PREVIOUS_KEY_FILE"},
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	// Were it to start, it would wait STARTUP_TIMEOUT for a database that is
	// not there, and fail.
	env := settingstest.Env(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"})
	settingstest.HelpStartsNothing(t, run, env, "users-service owns",
		"Usage: users-service", ":3005", "users?sslmode=disable", "ADMIN_EMAIL", "ADMIN_PASSWORD",
		"JWT_SIGNING_KEY_FILE", "JWT_PREVIOUS_KEY_FILE", "TOKEN_TTL", "15m")
}
