package participant

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/settings"
)

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func parse(t *testing.T, kv map[string]string) (Config, error) {
	t.Helper()
	c := Defaults("svc", ":1", "postgres://db")
	err := settings.Parse(envOf(kv), &c)
	return c, err
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := parse(t, nil)
	require.NoError(t, err)
	assert.Equal(t, Config{Name: "svc", LogLevel: "info", HTTPAddr: ":1", AMQPURL: "amqp://guest:guest@127.0.0.1:5672/",
		DatabaseURL: "postgres://db", StartupTimeout: 30 * time.Second, PublishTimeout: 5 * time.Second,
		ConsumerTuning:   rabbit.ConsumerTuning{Prefetch: 64, Workers: 4, MaxBatch: 32, MaxAttempts: 5},
		MessageRetention: 168 * time.Hour}, c,
		"every variable has a working default")
	assert.Equal(t, rabbit.DefaultTuning(), c.ConsumerTuning, "the consumer's fallbacks are the participants' defaults")
}

func TestConfigOverrides(t *testing.T) {
	t.Parallel()
	c, err := parse(t, map[string]string{"HTTP_ADDR": ":9", "DATABASE_URL": "postgres://other", "STARTUP_TIMEOUT": "2s",
		"CONSUMER_MAX_ATTEMPTS": "3", "DB_MAX_CONNS": "7", "CONSUMER_WORKERS": "2", "CONSUMER_MAX_BATCH": "1",
		"CONSUMER_PREFETCH": "10000", "PPROF": "true", "MESSAGE_RETENTION": "1m", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text",
		"STOP_WITH_PARENT": "true"})
	require.NoError(t, err)
	assert.Equal(t, ":9", c.HTTPAddr)
	assert.Equal(t, "postgres://other", c.DatabaseURL)
	assert.Equal(t, 2*time.Second, c.StartupTimeout)
	assert.Equal(t, 3, c.MaxAttempts)
	assert.Equal(t, int32(7), c.MaxConns)
	assert.Equal(t, 2, c.Workers)
	assert.Equal(t, 1, c.MaxBatch)
	assert.Equal(t, 10000, c.Prefetch)
	assert.Equal(t, time.Minute, c.MessageRetention)
	assert.True(t, c.Pprof)
	assert.True(t, c.StopWithParent)
}

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"startup timeout not a duration", map[string]string{"STARTUP_TIMEOUT": "soon"}},
		{"negative publish timeout", map[string]string{"PUBLISH_TIMEOUT": "-1s"}},
		{"zero attempts", map[string]string{"CONSUMER_MAX_ATTEMPTS": "0"}},
		{"pool size not a number", map[string]string{"DB_MAX_CONNS": "x"}},
		{"pool size zero", map[string]string{"DB_MAX_CONNS": "0"}},
		{"pool size over int32", map[string]string{"DB_MAX_CONNS": "2147483648"}},
		{"zero workers", map[string]string{"CONSUMER_WORKERS": "0"}},
		{"too many workers", map[string]string{"CONSUMER_WORKERS": "257"}},
		{"batch not a number", map[string]string{"CONSUMER_MAX_BATCH": "many"}},
		{"batch too large", map[string]string{"CONSUMER_MAX_BATCH": "1001"}},
		{"zero prefetch", map[string]string{"CONSUMER_PREFETCH": "0"}},
		{"prefetch too large", map[string]string{"CONSUMER_PREFETCH": "10001"}},
		{"pprof not a boolean", map[string]string{"PPROF": "maybe"}},
		{"stop with parent not a boolean", map[string]string{"STOP_WITH_PARENT": "yes please"}},
		// A timeout of 0 would fail every start-up or every publish.
		{"zero startup timeout", map[string]string{"STARTUP_TIMEOUT": "0s"}},
		{"zero publish timeout", map[string]string{"PUBLISH_TIMEOUT": "0"}},
		{"zero retention", map[string]string{"MESSAGE_RETENTION": "0s"}},
		{"negative retention", map[string]string{"MESSAGE_RETENTION": "-1h"}},
		{"unknown log level", map[string]string{"LOG_LEVEL": "loud"}},
		{"unknown log format", map[string]string{"LOG_FORMAT": "xml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tc.env)
			require.Error(t, err)
			for k := range tc.env {
				assert.Contains(t, err.Error(), k, "rejected, naming the variable")
			}
			assert.NotContains(t, err.Error(), "\n", "one line")
		})
	}
}

func TestConfigReportsEveryBadVariableAtOnce(t *testing.T) {
	t.Parallel()
	_, err := parse(t, map[string]string{"CONSUMER_WORKERS": "0", "STARTUP_TIMEOUT": "soon", "LOG_LEVEL": "loud", "PPROF": "maybe"})
	require.Error(t, err)
	for _, want := range []string{`CONSUMER_WORKERS "0": want an integer from 1 to 256`,
		`STARTUP_TIMEOUT "soon": want a positive duration`, `LOG_LEVEL "loud"`, `PPROF "maybe": want true or false`} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Equal(t, 0, strings.Count(err.Error(), "\n"), "one line: %q", err.Error())
}
