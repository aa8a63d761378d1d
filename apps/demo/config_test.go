package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/settings/settingstest"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	t.Run("defaults of a developer machine", func(t *testing.T) {
		c, err := parseConfig(env(nil))
		require.NoError(t, err)
		assert.Equal(t, "http://127.0.0.1:3000", c.GatewayURL)
		assert.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", c.AMQPURL)
		assert.Equal(t, "http://guest:guest@127.0.0.1:15672", c.ManagementURL)
		assert.Equal(t, "/", c.VHost)
		assert.NotEmpty(t, c.Sagactl, "a sagactl to run")
	})
	t.Run("overrides", func(t *testing.T) {
		c, err := parseConfig(env(map[string]string{
			"GATEWAY_URL": "http://localhost:8080/", "AMQP_URL": "amqp://u:p@broker:5672/demo",
			"RABBITMQ_MGMT_URL": "https://u:p@broker:15671", "SAGACTL": "/opt/sagactl", "TERM": "dumb",
		}))
		require.NoError(t, err)
		assert.Equal(t, "http://localhost:8080", c.GatewayURL, "trailing slash dropped")
		assert.Equal(t, "demo", c.VHost)
		assert.Equal(t, "/opt/sagactl", c.Sagactl)
		assert.Equal(t, "dumb", c.Term)
	})
	t.Run("every invalid value reported on one line", func(t *testing.T) {
		_, err := parseConfig(env(map[string]string{
			"GATEWAY_URL": "localhost:3000", "AMQP_URL": "http://x", "RABBITMQ_MGMT_URL": "ftp://x",
		}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "GATEWAY_URL")
		assert.Contains(t, err.Error(), "AMQP_URL")
		assert.Contains(t, err.Error(), "RABBITMQ_MGMT_URL")
		assert.NotContains(t, err.Error(), "\n")
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	// Were it to run, it would wait for a gateway at port 1.
	settingstest.HelpStartsNothing(t, run, env(map[string]string{"GATEWAY_URL": "http://127.0.0.1:1"}),
		"demo walks through ordersaga",
		"Usage: demo", "GATEWAY_URL", "http://127.0.0.1:3000", "AMQP_URL", "RABBITMQ_MGMT_URL", "SAGACTL")
}

func TestManagementUI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, url, addr, login string
	}{
		{"default login shown in full", "http://guest:guest@127.0.0.1:15672/", "http://127.0.0.1:15672", "guest/guest"},
		{"other password never shown", "http://ops:s3cret@mq:15672", "http://mq:15672", "ops"},
		{"no credentials", "http://mq:15672", "http://mq:15672", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, login := managementUI(tc.url)
			assert.Equal(t, tc.addr, addr)
			assert.Equal(t, tc.login, login)
		})
	}
}

func TestVersionStartsNothing(t *testing.T) {
	t.Parallel()
	// Were it to run, it would wait for a gateway at port 1.
	settingstest.VersionStartsNothing(t, run, env(map[string]string{"GATEWAY_URL": "http://127.0.0.1:1"}))
}
