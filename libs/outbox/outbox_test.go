package outbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// queue receives the order.created messages of the tests' topology.
const queue = "test.order-events"

var topology = events.Topology{Exchanges: events.Exchanges(), Queues: []events.Queue{
	{Name: queue, Bindings: []events.Binding{{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCreated}}},
}}

type env struct {
	pool   *pgxpool.Pool
	broker testinfra.Broker
	conn   *rabbit.Conn
	pub    *rabbit.Publisher
}

func setup(t testing.TB) env {
	t.Helper()
	pool := pgtest.Pool(t, 8, db.Messaging())
	b := testinfra.VHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, b.AMQPURL, t.Name(), topology, quiet)
	require.NoError(t, err)
	pub := rabbit.NewPublisher(conn, "test", 5*time.Second)
	t.Cleanup(func() { pub.Close(); conn.Close() })
	return env{pool: pool, broker: b, conn: conn, pub: pub}
}

func message(t testing.TB) events.Message {
	t.Helper()
	id := uuid.New()
	m, err := events.NewMessage(events.OrderCreated{OrderPlaced: events.OrderPlaced{
		OrderID: id, UserID: uuid.New(), Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}}, id.String())
	require.NoError(t, err)
	return m
}

// drain reads every message on queue until it has been quiet for a while.
func drain(t testing.TB, url, queue string, want int) []amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	var got []amqp.Delivery
	deadline := time.Now().Add(20 * time.Second)
	quietUntil := time.Time{}
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if ok {
			got = append(got, d)
			continue
		}
		if len(got) >= want {
			// Wait a little longer for anything that should not come.
			if quietUntil.IsZero() {
				quietUntil = time.Now().Add(300 * time.Millisecond)
			}
			if time.Now().After(quietUntil) {
				return got
			}
		}
		if time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func unpublished(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&n))
	return n
}

func TestRelayPublishesWhatWasCommittedAndNothingRolledBack(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	committed, rolledBack := message(t), message(t)
	require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, committed) }))
	errRollback := errors.New("handler failed after writing the outbox")
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if err := outbox.Add(ctx, tx, rolledBack); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)

	relay := outbox.NewRelay(e.pool, e.pub, "test-app", quiet, prometheus.NewRegistry())
	// Only the poll publishes here, at once.
	relay.Poll, relay.Grace = 20*time.Millisecond, 0
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	got := drain(t, e.broker.AMQPURL, queue, 1)
	require.Len(t, got, 1, "exactly the committed message")
	assert.Equal(t, committed.ID.String(), got[0].MessageId)
	assert.Equal(t, "test-app", got[0].AppId)
	assert.Equal(t, committed.Body, got[0].Body, "the exact bytes written")
	require.Eventually(t, func() bool { return unpublished(t, e.pool) == 0 }, 5*time.Second, 20*time.Millisecond)

	// Several messages added in one call are all written, and a message id
	// already there is not added twice.
	a, b := message(t), message(t)
	require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, a, b, committed) }))
	got = drain(t, e.broker.AMQPURL, queue, 2)
	require.Len(t, got, 2)
	ids := map[string][]byte{}
	for _, d := range got {
		ids[d.MessageId] = d.Body
	}
	assert.Equal(t, map[string][]byte{a.ID.String(): a.Body, b.ID.String(): b.Body}, ids)
}

func TestDispatchPublishesAtOnceAndMarksTheRows(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	relay := outbox.NewRelay(e.pool, e.pub, "test-app", quiet, prometheus.NewRegistry())
	// Neither the poll nor its grace lets the relay find these rows itself.
	relay.Poll, relay.Grace = time.Hour, time.Hour
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	written := []events.Message{message(t), message(t)}
	require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, written...) }))
	relay.Dispatch(written)

	got := drain(t, e.broker.AMQPURL, queue, 2)
	require.Len(t, got, 2, "both dispatched messages published")
	for i, d := range got {
		assert.Equal(t, written[i].ID.String(), d.MessageId)
		assert.Equal(t, written[i].Body, d.Body)
		assert.Equal(t, "test-app", d.AppId)
		assert.Equal(t, written[i].CorrelationID, d.CorrelationId)
	}
	require.Eventually(t, func() bool { return unpublished(t, e.pool) == 0 }, 10*time.Second, 20*time.Millisecond,
		"the dispatch marked its rows published")
}

func TestRowsSurviveABrokerOutage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	m := message(t)
	require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, m) }))

	require.NoError(t, e.conn.Close())
	relay := outbox.NewRelay(e.pool, e.pub, "test", quiet, prometheus.NewRegistry())
	_, err := relay.Flush(ctx)
	require.ErrorIs(t, err, rabbit.ErrUnavailable)
	assert.Equal(t, 1, unpublished(t, e.pool), "the row waits for the broker")

	conn, err := rabbit.Dial(ctx, e.broker.AMQPURL, "again", topology, quiet)
	require.NoError(t, err)
	defer conn.Close()
	relay = outbox.NewRelay(e.pool, rabbit.NewPublisher(conn, "test", 5*time.Second), "test", quiet, prometheus.NewRegistry())
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got := drain(t, e.broker.AMQPURL, queue, 1)
	require.Len(t, got, 1)
	assert.Equal(t, m.ID.String(), got[0].MessageId)
}

func TestConcurrentRelaysPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	const rows = 600
	want := map[string]bool{}
	require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		for range rows {
			m := message(t)
			want[m.ID.String()] = true
			if err := outbox.Add(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	}))
	var wg sync.WaitGroup
	for range 3 {
		relay := outbox.NewRelay(e.pool, e.pub, "test", quiet, prometheus.NewRegistry())
		wg.Go(func() {
			_, err := relay.Flush(ctx)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	got := drain(t, e.broker.AMQPURL, queue, rows)
	seen := map[string]int{}
	for _, d := range got {
		seen[d.MessageId]++
	}
	assert.Len(t, got, rows, "no row published twice, none lost")
	assert.Len(t, seen, rows)
	for id := range want {
		assert.Equal(t, 1, seen[id], "message %s", id)
	}
	assert.Zero(t, unpublished(t, e.pool))
}
