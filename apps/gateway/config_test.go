package main

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/settings/settingstest"
	"github.com/ordersaga/ordersaga/saga"
)

var envOf = settingstest.Env

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(envOf(nil))
	require.NoError(t, err)
	assert.Equal(t, config{
		HTTPAddr:        ":3000",
		AMQPURL:         "amqp://guest:guest@127.0.0.1:5672/",
		ServiceURLs:     defaultServiceURLs(),
		LogLevel:        "info",
		PublishTimeout:  5 * time.Second,
		StartupTimeout:  30 * time.Second,
		UpstreamTimeout: 5 * time.Second,
		AuthMode:        "off",
		UsersURL:        "http://127.0.0.1:3005",
	}, c)
	// Contract §1, whatever the table says.
	assert.Equal(t, "http://127.0.0.1:3001", c.ServiceURLs["order-service"], "ORDER_SERVICE_URL's default")
	assert.Equal(t, "http://127.0.0.1:3002", c.ServiceURLs["payment-service"], "PAYMENT_SERVICE_URL's default")
}

// defaultServiceURLs is every participant at its default address.
func defaultServiceURLs() map[string]string {
	urls := map[string]string{}
	for _, p := range saga.Participants() {
		urls[p.Name] = p.DefaultURL()
	}
	return urls
}

func TestParseConfigOverrides(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(envOf(map[string]string{
		"HTTP_ADDR":           "127.0.0.1:8080",
		"AMQP_URL":            "amqps://u:p@broker:5671/saga",
		"ORDER_SERVICE_URL":   "http://orders:3001/",
		"PAYMENT_SERVICE_URL": "https://payments",
		"LOG_LEVEL":           "DEBUG",
		"PUBLISH_TIMEOUT":     "250ms",
		"STARTUP_TIMEOUT":     "1m",
		"UPSTREAM_TIMEOUT":    "2s",
		"AUTH_MODE":           "required",
		"USERS_SERVICE_URL":   "http://users:3005/",
	}))
	require.NoError(t, err)
	urls := defaultServiceURLs()
	urls["order-service"] = "http://orders:3001"
	urls["payment-service"] = "https://payments"
	urls["users-service"] = "http://users:3005"
	assert.Equal(t, config{
		HTTPAddr:        "127.0.0.1:8080",
		AMQPURL:         "amqps://u:p@broker:5671/saga",
		ServiceURLs:     urls,
		LogLevel:        "DEBUG",
		PublishTimeout:  250 * time.Millisecond,
		StartupTimeout:  time.Minute,
		UpstreamTimeout: 2 * time.Second,
		AuthMode:        "required",
		UsersURL:        "http://users:3005",
	}, c)
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key, value, want string
	}{
		{"HTTP_ADDR", "3000", "HTTP_ADDR"},
		{"AMQP_URL", "http://guest:secret@h/", "AMQP_URL"},
		{"AMQP_URL", "amqp://", "AMQP_URL"},
		{"ORDER_SERVICE_URL", "127.0.0.1:3001", "ORDER_SERVICE_URL"},
		{"PAYMENT_SERVICE_URL", "ftp://h", "PAYMENT_SERVICE_URL"},
		{"LOG_LEVEL", "loud", "LOG_LEVEL"},
		{"AUTH_MODE", "on", "AUTH_MODE"},
		{"USERS_SERVICE_URL", "users:3005", "USERS_SERVICE_URL"},
		{"PUBLISH_TIMEOUT", "5", "PUBLISH_TIMEOUT"},
		{"PUBLISH_TIMEOUT", "0s", "PUBLISH_TIMEOUT"},
		{"STARTUP_TIMEOUT", "-1s", "STARTUP_TIMEOUT"},
		{"UPSTREAM_TIMEOUT", "soon", "UPSTREAM_TIMEOUT"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT"},
		{"STOP_WITH_PARENT", "sure", "STOP_WITH_PARENT"},
	}
	for _, p := range saga.Participants() {
		// Every participant's variable is read, not only the two above.
		cases = append(cases, struct{ key, value, want string }{p.URLVar(), "mailto:x@h", p.URLVar()})
	}
	rejections := make([]settingstest.Rejection, len(cases))
	for i, tc := range cases {
		// Passwords stay out of errors.
		rejections[i] = settingstest.Rejection{Name: tc.key + "=" + tc.value, Env: map[string]string{tc.key: tc.value}, Key: tc.want, Secret: "secret"}
	}
	settingstest.Rejects(t, parseConfig, rejections)
	t.Run("every error at once, on one line", func(t *testing.T) {
		t.Parallel()
		_, err := parseConfig(envOf(map[string]string{"LOG_LEVEL": "loud", "UPSTREAM_TIMEOUT": "x", "HTTP_ADDR": "x"}))
		require.Error(t, err)
		for _, want := range []string{"LOG_LEVEL", "UPSTREAM_TIMEOUT", "HTTP_ADDR"} {
			assert.Contains(t, err.Error(), want)
		}
		assert.NotContains(t, err.Error(), "\n")
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	// A port of our own: were the gateway to start, it would fail to bind
	// it, or wait for the broker that is not at port 1.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	env := envOf(map[string]string{"HTTP_ADDR": l.Addr().String(), "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
		"STARTUP_TIMEOUT": "1m"})
	settingstest.HelpStartsNothing(t, run, env, "gateway is the public REST API",
		"Usage: gateway", "HTTP_ADDR", ":3000", "ORDER_SERVICE_URL", "http://127.0.0.1:3001",
		"PAYMENT_SERVICE_URL", "UPSTREAM_TIMEOUT", "LOG_FORMAT", "STOP_WITH_PARENT")
}

func TestVersionStartsNothing(t *testing.T) {
	t.Parallel()
	// Were the gateway to start, it would wait for the broker that is not at port 1.
	settingstest.VersionStartsNothing(t, run,
		envOf(map[string]string{"HTTP_ADDR": "127.0.0.1:0", "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "STARTUP_TIMEOUT": "1m"}))
}
