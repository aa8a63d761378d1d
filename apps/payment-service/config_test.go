package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := parseConfig(env(nil))
	require.NoError(t, err, "every variable has a working default")
	assert.Equal(t, ":3002", c.HTTPAddr)
	assert.Equal(t, int64(1_000_000), c.Gateway.Limit)
	assert.Zero(t, c.Gateway.DeclineRate)
	assert.Zero(t, c.Gateway.Latency)

	c, err = parseConfig(env(map[string]string{"PAYMENT_DECLINE_RATE": "1", "PAYMENT_LIMIT": "0", "PAYMENT_LATENCY": "250ms"}))
	require.NoError(t, err)
	assert.Equal(t, 1.0, c.Gateway.DeclineRate)
	assert.Zero(t, c.Gateway.Limit)

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
		{"prefetch zero", map[string]string{"CONSUMER_PREFETCH": "0"}, "CONSUMER_PREFETCH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(env(tc.env))
			assert.ErrorContains(t, err, tc.key, "rejected, naming the variable")
		})
	}
}
