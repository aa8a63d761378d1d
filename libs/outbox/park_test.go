package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// row writes m to the outbox as bound for exchange, committed.
func row(t testing.TB, pool *pgxpool.Pool, exchange string, m events.Message) {
	t.Helper()
	require.NoError(t, messagingdb.New(pool).OutboxAdd(context.Background(), messagingdb.OutboxAddParams{
		MessageID: m.ID, MessageType: m.Type, Exchange: exchange, CorrelationID: m.CorrelationID,
		CausationID: m.CausationID, Body: m.Body, CreatedAt: m.Timestamp,
	}))
}

type rowState struct {
	Published bool
	Parked    bool
	Reason    string
}

func state(t testing.TB, pool *pgxpool.Pool, id uuid.UUID) rowState {
	t.Helper()
	var s rowState
	var reason *string
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT published_at IS NOT NULL, parked_at IS NOT NULL, park_reason FROM outbox WHERE message_id = $1", id).
		Scan(&s.Published, &s.Parked, &reason))
	if reason != nil {
		s.Reason = *reason
	}
	return s
}

func ids(ds []amqp.Delivery) map[string]bool {
	got := map[string]bool{}
	for _, d := range ds {
		got[d.MessageId] = true
	}
	return got
}

// The broker returns a row for an exchange without bindings, and closes
// the channel on a row for an exchange that does not exist: the poll parks
// both and publishes the rows around them, then is not held up by them.
func TestPollParksRowsTheBrokerCannotTakeAndPublishesTheRest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	admin, err := amqp.Dial(e.broker.AMQPURL)
	require.NoError(t, err)
	defer admin.Close()
	ch, err := admin.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare("test.unbound", "topic", true, false, false, false, nil))

	var good []events.Message
	unbound, missing := message(t), message(t)
	for i := range 5 {
		m := message(t)
		good = append(good, m)
		row(t, e.pool, events.ExchangeOrderEvents, m)
		switch i {
		case 1:
			row(t, e.pool, "test.unbound", unbound)
		case 3:
			row(t, e.pool, "test.missing", missing)
		}
	}

	reg := prometheus.NewRegistry()
	relay := outbox.NewRelay(e.pool, e.pub, "test", quiet, reg)
	n, err := relay.Flush(ctx)
	require.NoError(t, err, "rows the broker cannot take do not fail the flush")
	assert.Equal(t, len(good), n, "every good row published")

	got := drain(t, e.broker.AMQPURL, queue, len(good))
	// Rows confirmed before the missing exchange closed the channel are
	// published again; the consumers' inboxes drop the copies.
	want := map[string]bool{}
	for _, m := range good {
		want[m.ID.String()] = true
		assert.Equal(t, rowState{Published: true}, state(t, e.pool, m.ID), "good row %s", m.ID)
	}
	assert.Equal(t, want, ids(got), "the good rows, and only they, reached the queue")

	for name, tc := range map[string]struct {
		id     uuid.UUID
		reason string
	}{
		"exchange without bindings": {unbound.ID, "NO_ROUTE"},
		"missing exchange":          {missing.ID, `exchange "test.missing" not found`},
	} {
		s := state(t, e.pool, tc.id)
		assert.True(t, s.Parked, "%s: parked", name)
		assert.False(t, s.Published, "%s: not marked published", name)
		assert.Contains(t, s.Reason, tc.reason, "%s: the reason is kept", name)
	}
	assert.Equal(t, 2.0, metric(t, reg, "ordersaga_outbox_parked_total"))

	// The poll is not held up: a later row is published, the parked ones
	// are neither published nor parked (nor logged) again.
	later := message(t)
	row(t, e.pool, events.ExchangeOrderEvents, later)
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, map[string]bool{later.ID.String(): true}, ids(drain(t, e.broker.AMQPURL, queue, 1)))
	assert.Equal(t, 2.0, metric(t, reg, "ordersaga_outbox_parked_total"), "each row parked once")

	// Once its route exists, the documented statement un-parks a row.
	_, err = ch.QueueDeclare("test.unbound.q", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("test.unbound.q", "#", "test.unbound", false, nil))
	_, err = e.pool.Exec(ctx, "UPDATE outbox SET parked_at = NULL, park_reason = NULL WHERE parked_at IS NOT NULL")
	require.NoError(t, err)
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the un-parked row whose route exists now is published")
	assert.Equal(t, map[string]bool{unbound.ID.String(): true}, ids(drain(t, e.broker.AMQPURL, "test.unbound.q", 1)))
	assert.Equal(t, rowState{Published: true}, state(t, e.pool, unbound.ID))
	assert.True(t, state(t, e.pool, missing.ID).Parked, "the row whose exchange is still missing is parked again")

	// A running relay shows the parked rows in its gauge from its first pass.
	reg = prometheus.NewRegistry()
	relay = outbox.NewRelay(e.pool, e.pub, "test", quiet, reg)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(runCtx) }()
	defer func() { stop(); <-done }()
	require.Eventually(t, func() bool {
		return metric(t, reg, "ordersaga_outbox_parked_messages") == 1
	}, 10*time.Second, 20*time.Millisecond, "the parked gauge shows the row still parked")
	assert.Zero(t, metric(t, reg, "ordersaga_outbox_backlog_messages"), "a parked row is not backlog")
}

// A dispatch with a message that nobody is bound for (the consumer's queue
// was never declared) publishes and marks the others, and parks that one
// rather than leaving it to a poll that would try it for ever.
func TestDispatchParksAnUnroutableMessageAndMarksTheRest(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t, 4, db.Messaging())
	b := testinfra.VHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A queue for payment.approved only: nothing is bound to orders.events.
	paymentQueue := "test.payment-events"
	conn, err := rabbit.Dial(ctx, b.AMQPURL, t.Name(), events.Topology{Exchanges: events.Exchanges(), Queues: []events.Queue{
		{Name: paymentQueue, Bindings: []events.Binding{{Exchange: events.ExchangePaymentEvents, Key: events.TypePaymentApproved}}},
	}}, quiet)
	require.NoError(t, err)
	pub := rabbit.NewPublisher(conn, "test", 5*time.Second)
	t.Cleanup(func() { pub.Close(); conn.Close() })

	reg := prometheus.NewRegistry()
	relay := outbox.NewRelay(pool, pub, "test", quiet, reg)
	relay.Poll, relay.Grace = time.Hour, time.Hour // only the dispatch publishes here
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(runCtx) }()
	defer func() { stop(); <-done }()

	id := uuid.New()
	routed := events.Message{ID: uuid.New(), Type: events.TypePaymentApproved, CorrelationID: id.String(),
		Timestamp: time.Now(), Body: []byte(`{}`)}
	unroutable := message(t)
	msgs := []events.Message{routed, unroutable}
	for _, m := range msgs {
		row(t, pool, events.ExchangeOf(m.Type), m)
	}
	relay.Dispatch(msgs)

	require.Eventually(t, func() bool {
		return state(t, pool, routed.ID).Published && state(t, pool, unroutable.ID).Parked
	}, 10*time.Second, 20*time.Millisecond, "the routed message marked, the unroutable one parked")
	assert.Equal(t, map[string]bool{routed.ID.String(): true}, ids(drain(t, b.AMQPURL, paymentQueue, 1)))
	s := state(t, pool, unroutable.ID)
	assert.False(t, s.Published)
	assert.Contains(t, s.Reason, "NO_ROUTE")

	// The poll neither publishes it nor parks (and logs) it again.
	for range 3 {
		n, err := relay.Flush(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
	}
	assert.Equal(t, 1.0, metric(t, reg, "ordersaga_outbox_published_total"), "only the routed message was published")
	assert.Equal(t, 1.0, metric(t, reg, "ordersaga_outbox_parked_total"), "parked once")
}

// metric is the value of the counter or gauge name in reg.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	require.Failf(t, "metric not registered", "%s", name)
	return 0
}
