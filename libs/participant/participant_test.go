package participant

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := Env(env(nil), "svc", ":1", "postgres://db")
	require.NoError(t, err)
	assert.Equal(t, Config{Name: "svc", LogLevel: "info", HTTPAddr: ":1", AMQPURL: "amqp://guest:guest@127.0.0.1:5672/",
		DatabaseURL: "postgres://db", StartupTimeout: 30 * time.Second, PublishTimeout: 5 * time.Second, MaxAttempts: 5,
		Workers: 4, MaxBatch: 32, MessageRetention: 168 * time.Hour}, c,
		"every variable has a working default")

	c, err = Env(env(map[string]string{"HTTP_ADDR": ":9", "STARTUP_TIMEOUT": "2s", "CONSUMER_MAX_ATTEMPTS": "3", "DB_MAX_CONNS": "7",
		"CONSUMER_WORKERS": "2", "CONSUMER_MAX_BATCH": "1", "PPROF": "true", "MESSAGE_RETENTION": "1m"}),
		"svc", ":1", "postgres://db")
	require.NoError(t, err)
	assert.Equal(t, ":9", c.HTTPAddr)
	assert.Equal(t, 2*time.Second, c.StartupTimeout)
	assert.Equal(t, 3, c.MaxAttempts)
	assert.Equal(t, int32(7), c.MaxConns)
	assert.Equal(t, 2, c.Workers)
	assert.Equal(t, 1, c.MaxBatch)
	assert.True(t, c.Pprof)
	assert.Equal(t, time.Minute, c.MessageRetention)

	for _, bad := range []map[string]string{
		{"STARTUP_TIMEOUT": "soon"}, {"PUBLISH_TIMEOUT": "-1s"}, {"CONSUMER_MAX_ATTEMPTS": "0"}, {"DB_MAX_CONNS": "x"},
		{"CONSUMER_WORKERS": "0"}, {"CONSUMER_MAX_BATCH": "many"}, {"PPROF": "maybe"},
		{"STARTUP_TIMEOUT": "0s"}, {"PUBLISH_TIMEOUT": "0"}, // every start-up or every publish would fail
		{"MESSAGE_RETENTION": "7d"}, {"MESSAGE_RETENTION": "0s"}, {"MESSAGE_RETENTION": "-1h"}, // 0 would prune every message at once
	} {
		_, err := Env(env(bad), "svc", ":1", "postgres://db")
		for k := range bad {
			assert.ErrorContains(t, err, k, "%v is rejected, naming the variable", bad)
		}
	}
}
