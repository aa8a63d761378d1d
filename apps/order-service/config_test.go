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
	c, err := parseConfig(settingstest.Env(nil))
	require.NoError(t, err, "every variable has a working default")
	assert.Equal(t, "order-service", c.Name)
	assert.Equal(t, ":3001", c.HTTPAddr)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, 2*time.Minute, c.PaymentTimeout)
	assert.Equal(t, 64, c.Prefetch)
	assert.Equal(t, 168*time.Hour, c.MessageRetention)

	c, err = parseConfig(settingstest.Env(map[string]string{"ORDER_PAYMENT_TIMEOUT": "30s", "CONSUMER_PREFETCH": "8", "HTTP_ADDR": ":9"}))
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, c.PaymentTimeout)
	assert.Equal(t, 8, c.Prefetch)
	assert.Equal(t, ":9", c.HTTPAddr)

	settingstest.Rejects(t, parseConfig, []settingstest.Rejection{
		{Name: "payment timeout not a duration", Env: map[string]string{"ORDER_PAYMENT_TIMEOUT": "abc"}, Key: "ORDER_PAYMENT_TIMEOUT"},
		{Name: "payment timeout zero", Env: map[string]string{"ORDER_PAYMENT_TIMEOUT": "0s"}, Key: "ORDER_PAYMENT_TIMEOUT"},
		{Name: "payment timeout negative", Env: map[string]string{"ORDER_PAYMENT_TIMEOUT": "-1m"}, Key: "ORDER_PAYMENT_TIMEOUT"},
		{Name: "prefetch zero", Env: map[string]string{"CONSUMER_PREFETCH": "0"}, Key: "CONSUMER_PREFETCH"},
		{Name: "prefetch too large", Env: map[string]string{"CONSUMER_PREFETCH": "10001"}, Key: "CONSUMER_PREFETCH"},
		{Name: "workers zero", Env: map[string]string{"CONSUMER_WORKERS": "0"}, Key: "CONSUMER_WORKERS"},
	})
	t.Run("two bad variables, one line", func(t *testing.T) {
		t.Parallel()
		_, err := parseConfig(settingstest.Env(map[string]string{"ORDER_PAYMENT_TIMEOUT": "soon", "CONSUMER_PREFETCH": "0"}))
		require.Error(t, err)
		assert.Equal(t, `configuration: CONSUMER_PREFETCH "0": want an integer from 1 to 10000; `+
			`ORDER_PAYMENT_TIMEOUT "soon": want a positive duration such as 500ms or 2m`, err.Error())
	})
}

func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	// Were it to start, it would wait STARTUP_TIMEOUT for a database that is
	// not there, and fail.
	env := settingstest.Env(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none", "STARTUP_TIMEOUT": "1m"})
	settingstest.HelpStartsNothing(t, run, env, "order-service owns orders",
		"Usage: order-service", "HTTP_ADDR", ":3001", "orders?sslmode=disable",
		"ORDER_PAYMENT_TIMEOUT", "CONSUMER_PREFETCH", "MESSAGE_RETENTION", "168h", "STOP_WITH_PARENT")
}
