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

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := parseConfig(env(nil))
	require.NoError(t, err, "every variable has a working default")
	assert.Equal(t, ":3002", c.HTTPAddr)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/payments?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, int64(1_000_000), c.Gateway().Limit)
	assert.Zero(t, c.Gateway().DeclineRate)
	assert.Zero(t, c.Gateway().Latency)
	assert.Equal(t, 64, c.Prefetch)

	c, err = parseConfig(env(map[string]string{"PAYMENT_DECLINE_RATE": "1", "PAYMENT_LIMIT": "0", "PAYMENT_LATENCY": "250ms"}))
	require.NoError(t, err)
	assert.Equal(t, 1.0, c.Gateway().DeclineRate)
	assert.Zero(t, c.Gateway().Limit)
	assert.Equal(t, 250*time.Millisecond, c.Gateway().Latency)

	cases := []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"decline rate over 1", map[string]string{"PAYMENT_DECLINE_RATE": "2"}, "PAYMENT_DECLINE_RATE"},
		{"negative decline rate", map[string]string{"PAYMENT_DECLINE_RATE": "-0.1"}, "PAYMENT_DECLINE_RATE"},
		{"decline rate not a number", map[string]string{"PAYMENT_DECLINE_RATE": "abc"}, "PAYMENT_DECLINE_RATE"},
		{"decline rate NaN", map[string]string{"PAYMENT_DECLINE_RATE": "NaN"}, "PAYMENT_DECLINE_RATE"},
		{"decline rate infinite", map[string]string{"PAYMENT_DECLINE_RATE": "Inf"}, "PAYMENT_DECLINE_RATE"},
		{"negative limit", map[string]string{"PAYMENT_LIMIT": "-1"}, "PAYMENT_LIMIT"},
		{"fractional limit", map[string]string{"PAYMENT_LIMIT": "1.5"}, "PAYMENT_LIMIT"},
		{"latency not a duration", map[string]string{"PAYMENT_LATENCY": "soon"}, "PAYMENT_LATENCY"},
		{"negative latency", map[string]string{"PAYMENT_LATENCY": "-1s"}, "PAYMENT_LATENCY"},
		{"prefetch zero", map[string]string{"CONSUMER_PREFETCH": "0"}, "CONSUMER_PREFETCH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(env(tc.env))
			assert.ErrorContains(t, err, tc.key, "rejected, naming the variable")
		})
	}
	t.Run("two bad variables, one line", func(t *testing.T) {
		t.Parallel()
		_, err := parseConfig(env(map[string]string{"PAYMENT_DECLINE_RATE": "NaN", "PAYMENT_LIMIT": "-1"}))
		require.Error(t, err)
		assert.Equal(t, `configuration: PAYMENT_DECLINE_RATE "NaN": want a number from 0 to 1; `+
			`PAYMENT_LIMIT "-1": want a non-negative integer`, err.Error())
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			// Were it to start, it would wait STARTUP_TIMEOUT for a database
			// that is not there, and fail.
			env := func(k string) string {
				return map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"}[k]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout bytes.Buffer
			start := time.Now()
			require.NoError(t, run(ctx, []string{arg}, env, &stdout), "exit 0")
			assert.Less(t, time.Since(start), 5*time.Second, "returns at once")
			out := stdout.String()
			assert.True(t, strings.HasPrefix(out, "payment-service owns payments"), out)
			for _, want := range []string{"Usage: payment-service", "HTTP_ADDR", ":3002", "payments?sslmode=disable",
				"PAYMENT_DECLINE_RATE", "a number from 0 to 1", "PAYMENT_LIMIT", "1000000", "CONSUMER_WORKERS"} {
				assert.Contains(t, out, want)
			}
		})
	}
}
