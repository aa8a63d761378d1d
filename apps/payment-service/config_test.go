package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/settings/settingstest"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := settingstest.Env
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

	settingstest.Rejects(t, parseConfig, []settingstest.Rejection{
		{Name: "decline rate over 1", Env: map[string]string{"PAYMENT_DECLINE_RATE": "2"}, Key: "PAYMENT_DECLINE_RATE"},
		{Name: "negative decline rate", Env: map[string]string{"PAYMENT_DECLINE_RATE": "-0.1"}, Key: "PAYMENT_DECLINE_RATE"},
		{Name: "decline rate not a number", Env: map[string]string{"PAYMENT_DECLINE_RATE": "abc"}, Key: "PAYMENT_DECLINE_RATE"},
		{Name: "decline rate NaN", Env: map[string]string{"PAYMENT_DECLINE_RATE": "NaN"}, Key: "PAYMENT_DECLINE_RATE"},
		{Name: "decline rate infinite", Env: map[string]string{"PAYMENT_DECLINE_RATE": "Inf"}, Key: "PAYMENT_DECLINE_RATE"},
		{Name: "negative limit", Env: map[string]string{"PAYMENT_LIMIT": "-1"}, Key: "PAYMENT_LIMIT"},
		{Name: "fractional limit", Env: map[string]string{"PAYMENT_LIMIT": "1.5"}, Key: "PAYMENT_LIMIT"},
		{Name: "latency not a duration", Env: map[string]string{"PAYMENT_LATENCY": "soon"}, Key: "PAYMENT_LATENCY"},
		{Name: "negative latency", Env: map[string]string{"PAYMENT_LATENCY": "-1s"}, Key: "PAYMENT_LATENCY"},
		{Name: "prefetch zero", Env: map[string]string{"CONSUMER_PREFETCH": "0"}, Key: "CONSUMER_PREFETCH"},
	})
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
	// Were it to start, it would wait STARTUP_TIMEOUT for a database that is
	// not there, and fail.
	env := settingstest.Env(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"})
	settingstest.HelpStartsNothing(t, run, env, "payment-service owns payments",
		"Usage: payment-service", "HTTP_ADDR", ":3002", "payments?sslmode=disable",
		"PAYMENT_DECLINE_RATE", "a number from 0 to 1", "PAYMENT_LIMIT", "1000000", "CONSUMER_WORKERS")
}
