package main

import (
	"bytes"
	"context"
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
	assert.Equal(t, "order-service", c.Name)
	assert.Equal(t, ":3001", c.HTTPAddr)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, 2*time.Minute, c.PaymentTimeout)
	assert.Equal(t, 64, c.Prefetch)
	assert.Equal(t, 168*time.Hour, c.MessageRetention)

	c, err = parseConfig(envOf(map[string]string{"ORDER_PAYMENT_TIMEOUT": "30s", "CONSUMER_PREFETCH": "8", "HTTP_ADDR": ":9"}))
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, c.PaymentTimeout)
	assert.Equal(t, 8, c.Prefetch)
	assert.Equal(t, ":9", c.HTTPAddr)

	cases := []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"payment timeout not a duration", map[string]string{"ORDER_PAYMENT_TIMEOUT": "abc"}, "ORDER_PAYMENT_TIMEOUT"},
		{"payment timeout zero", map[string]string{"ORDER_PAYMENT_TIMEOUT": "0s"}, "ORDER_PAYMENT_TIMEOUT"},
		{"payment timeout negative", map[string]string{"ORDER_PAYMENT_TIMEOUT": "-1m"}, "ORDER_PAYMENT_TIMEOUT"},
		{"prefetch zero", map[string]string{"CONSUMER_PREFETCH": "0"}, "CONSUMER_PREFETCH"},
		{"prefetch too large", map[string]string{"CONSUMER_PREFETCH": "10001"}, "CONSUMER_PREFETCH"},
		{"workers zero", map[string]string{"CONSUMER_WORKERS": "0"}, "CONSUMER_WORKERS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(envOf(tc.env))
			assert.ErrorContains(t, err, tc.key, "rejected, naming the variable")
		})
	}
	t.Run("two bad variables, one line", func(t *testing.T) {
		t.Parallel()
		_, err := parseConfig(envOf(map[string]string{"ORDER_PAYMENT_TIMEOUT": "soon", "CONSUMER_PREFETCH": "0"}))
		require.Error(t, err)
		assert.Equal(t, `configuration: CONSUMER_PREFETCH "0": want an integer from 1 to 10000; `+
			`ORDER_PAYMENT_TIMEOUT "soon": want a positive duration such as 500ms or 2m`, err.Error())
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			// Were it to start, it would wait STARTUP_TIMEOUT for a database
			// that is not there, and fail.
			env := envOf(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout bytes.Buffer
			start := time.Now()
			require.NoError(t, run(ctx, []string{arg}, env, &stdout), "exit 0")
			assert.Less(t, time.Since(start), 5*time.Second, "returns at once")
			out := stdout.String()
			assert.True(t, strings.HasPrefix(out, "order-service owns orders"), out)
			for _, want := range []string{"Usage: order-service", "HTTP_ADDR", ":3001", "orders?sslmode=disable",
				"ORDER_PAYMENT_TIMEOUT", "CONSUMER_PREFETCH", "MESSAGE_RETENTION", "168h", "STOP_WITH_PARENT"} {
				assert.Contains(t, out, want)
			}
		})
	}
	t.Run("any other argument is refused", func(t *testing.T) {
		t.Parallel()
		var stdout bytes.Buffer
		err := run(context.Background(), []string{"--port", "1"}, envOf(nil), &stdout)
		assert.ErrorContains(t, err, `unexpected argument "--port"`)
		assert.Empty(t, stdout.String())
	})
}
