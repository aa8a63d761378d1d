package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		wantVHost string
		wantMgmt  string
	}{
		{"defaults", nil, "/", "http://guest:guest@127.0.0.1:15672"},
		{"named vhost", map[string]string{"AMQP_URL": "amqp://u:p@broker:5672/orders"}, "orders", "http://guest:guest@127.0.0.1:15672"},
		{"escaped default vhost", map[string]string{"AMQP_URL": "amqp://u:p@broker:5672/%2F"}, "/", "http://guest:guest@127.0.0.1:15672"},
		{"no path", map[string]string{"AMQP_URL": "amqp://u:p@broker:5672"}, "/", "http://guest:guest@127.0.0.1:15672"},
		{"management URL", map[string]string{"RABBITMQ_MGMT_URL": "https://admin:s3cret@mq.example:443"}, "/", "https://admin:s3cret@mq.example:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(func(k string) string { return tt.env[k] })
			require.NoError(t, err)
			assert.Equal(t, tt.wantVHost, c.VHost, "vhost")
			assert.Equal(t, tt.wantMgmt, c.ManagementURL, "management URL")
		})
	}
}

func TestParseConfigRejectsBadURLs(t *testing.T) {
	t.Parallel()
	_, err := parseConfig(func(k string) string {
		return map[string]string{"AMQP_URL": "postgres://x:secret@db/", "RABBITMQ_MGMT_URL": "broker:15672"}[k]
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AMQP_URL")
	assert.Contains(t, err.Error(), "RABBITMQ_MGMT_URL")
	assert.NotContains(t, err.Error(), "secret", "no password in the error")
	assert.NotContains(t, err.Error(), "\n", "one line")
}
