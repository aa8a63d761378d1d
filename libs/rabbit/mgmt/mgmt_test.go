package mgmt_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

func TestNewRejectsBadURLsWithoutEchoingThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
	}{
		{"not a URL", "http://guest:s3cret@%zz"},
		{"no host", "http://guest:s3cret@"},
		{"amqp scheme", "amqp://guest:s3cret@127.0.0.1:15672"},
		{"empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mgmt.New(tc.raw)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cret", "the password stays out of the error")
		})
	}
}

func TestVHostLifecycle(t *testing.T) {
	t.Parallel()
	s := testinfra.Need(t)
	api, err := mgmt.New(s.ManagementURL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A name that needs escaping: one path segment, not two.
	vhost := "test-mgmt/" + uuid.NewString()[:8]
	require.NoError(t, api.CreateVHost(ctx, vhost))
	t.Cleanup(func() { _ = api.DeleteVHost(context.Background(), vhost) })
	require.NoError(t, api.CreateVHost(ctx, vhost), "creating an existing vhost is not an error")
	u, err := url.Parse(s.AMQPURL)
	require.NoError(t, err)
	require.NoError(t, api.GrantAll(ctx, vhost, u.User.Username()))

	// The grant works: the test user declares a queue in the vhost.
	u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	conn, err := amqp.Dial(u.String())
	require.NoError(t, err, "connect to the new vhost")
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)

	qs, err := api.Queues(ctx, vhost)
	require.NoError(t, err)
	require.Len(t, qs, 1)
	assert.Equal(t, "work", qs[0].Name)
	assert.Equal(t, "quorum", qs[0].Type)

	require.NoError(t, conn.Close(), "nothing in flight in the vhost deleted")
	// A busy broker deletes vhosts one at a time and may take longer than
	// one request waits: ask again until it answers, as operators would. A
	// request that timed out may have deleted it all the same.
	for {
		err := api.DeleteVHost(ctx, vhost)
		if err == nil || errors.Is(err, mgmt.ErrNotFound) {
			break
		}
		require.NoError(t, ctx.Err(), "delete the vhost: %v", err)
		time.Sleep(time.Second)
	}
	err = api.DeleteVHost(ctx, vhost)
	assert.ErrorIs(t, err, mgmt.ErrNotFound, "a deleted vhost is gone")
	_, err = api.Queues(ctx, vhost)
	assert.ErrorIs(t, err, mgmt.ErrNotFound)
	var se *mgmt.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Code)
}

func TestOverviewAndCredentials(t *testing.T) {
	t.Parallel()
	s := testinfra.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := mgmt.New(s.ManagementURL)
	require.NoError(t, err)
	ov, err := api.Overview(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, ov.RabbitMQVersion)
	assert.NotEmpty(t, ov.ErlangVersion)

	u, err := url.Parse(s.ManagementURL)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), "wrong-"+uuid.NewString())
	bad, err := mgmt.New(u.String())
	require.NoError(t, err)
	_, err = bad.Overview(ctx)
	assert.ErrorIs(t, err, mgmt.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "wrong-", "the password stays out of the error")
}
