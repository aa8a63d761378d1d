package users_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/users/usersdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/users-service/internal/users"
)

// users-service consumes nothing, so the conformance suite, whose cases
// feed a participant the messages it consumes, has nothing to run on it.
// What the suite checks of a producer is checked here: user.registered
// reaches its consumer's queue (declared by users-service while
// notification-service is not deployed) at once after commit, and also
// when the process died between commit and publish (the relay's poll).

const userEvents = "notification-service.user-events"

// startParticipant runs users-service's participant on a fresh database and
// vhost until the test ends.
func startParticipant(t *testing.T) (*participant.Participant, testinfra.Broker) {
	t.Helper()
	broker := testinfra.VHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := participant.Start(ctx, participant.Config{
		Name: users.Name, HTTPAddr: "127.0.0.1:0", AMQPURL: broker.AMQPURL, DatabaseURL: testinfra.Database(t),
		StartupTimeout: 30 * time.Second, PublishTimeout: 5 * time.Second, MaxConns: 8, MessageRetention: time.Hour,
		ConsumerTuning: rabbit.ConsumerTuning{MaxAttempts: 3, Workers: 1, MaxBatch: 8, Prefetch: 8},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), db.MustSchema("users"), saga.TopologyOf(users.Name))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, p.Engine()) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "users-service stops cleanly")
	})
	return p, broker
}

func newServiceOn(t *testing.T, p *participant.Participant, runner *uow.Runner) *users.Service {
	t.Helper()
	key, err := users.DevelopmentKey(context.Background(), usersdb.New(p.Pool))
	require.NoError(t, err)
	s, err := users.NewService(runner, p.Log, users.Keys{Signing: key}, 15*time.Minute)
	require.NoError(t, err)
	return s
}

// nextUserEvent waits for the next message of the user events' queue.
func nextUserEvent(t *testing.T, b testinfra.Broker, within time.Duration) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	var d amqp.Delivery
	require.Eventually(t, func() bool {
		var ok bool
		d, ok, err = ch.Get(userEvents, true)
		require.NoError(t, err)
		return ok
	}, within, 50*time.Millisecond, "a message in %s", userEvents)
	return d
}

func TestRegistrationPublishesUserRegistered(t *testing.T) {
	t.Parallel()
	p, broker := startParticipant(t)
	s := newServiceOn(t, p, p.Runner)
	u, err := s.Register(context.Background(), users.Registration{Email: "Ada@Example.com", Password: "ada's long password", Name: "Ada"})
	require.NoError(t, err)

	// Longer than the relay's 5 s grace: a dispatch that failed is relayed.
	d := nextUserEvent(t, broker, 30*time.Second)
	assert.Equal(t, events.TypeUserRegistered, d.Type)
	assert.Equal(t, u.ID.String(), d.CorrelationId, "correlated by the user id (contract §4)")
	assert.Equal(t, users.Name, d.AppId)
	var body events.UserRegistered
	require.NoError(t, json.Unmarshal(d.Body, &body))
	assert.Equal(t, events.UserRegistered{UserID: u.ID, Email: "ada@example.com", Name: "Ada"}, body)
}

func TestACrashBetweenCommitAndPublishIsRepublished(t *testing.T) {
	t.Parallel()
	p, broker := startParticipant(t)
	// A runner that never dispatches: what it commits is left to the
	// relay's poll, as after a crash right after the commit.
	crashed := uow.NewRunner(p.Pool, nil, prometheus.NewRegistry())
	s := newServiceOn(t, p, crashed)
	u, err := s.Register(context.Background(), users.Registration{Email: "bob@example.com", Password: "bob's long password", Name: "Bob"})
	require.NoError(t, err)

	d := nextUserEvent(t, broker, 30*time.Second)
	assert.Equal(t, events.TypeUserRegistered, d.Type)
	assert.Equal(t, u.ID.String(), d.CorrelationId)
	// The relay marks the row once the broker confirmed it.
	assert.Eventually(t, func() bool {
		var unpublished int
		require.NoError(t, p.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&unpublished))
		return unpublished == 0
	}, 10*time.Second, 50*time.Millisecond, "the row is marked published")
}
