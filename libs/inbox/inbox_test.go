package inbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/inbox"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// setup returns a fresh database with the messaging schema and a table
// effects(columns), and its inbox.
func setup(t *testing.T, columns string) (*pgxpool.Pool, *inbox.Inbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Connect(ctx, testinfra.Database(t), 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), db.Messaging()))
	_, err = pool.Exec(ctx, "CREATE TABLE effects ("+columns+")")
	require.NoError(t, err)
	return pool, inbox.New(pool, prometheus.NewRegistry())
}

func TestRedeliveryIsANoOpAndAFailureLeavesNoTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, in := setup(t, "message_id text")

	d := rabbit.Delivery{MessageID: uuid.NewString(), Type: "order.created", CorrelationID: uuid.NewString(), Body: []byte(`{"total":5}`)}
	effect := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", d.MessageID)
		return err
	}
	effects := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n))
		return n
	}

	boom := errors.New("boom")
	err := in.Once(ctx, "consumer-a", d, func(tx pgx.Tx) error {
		if err := effect(tx); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Zero(t, effects(), "a failed handler rolls back its effect")

	for range 3 {
		require.NoError(t, in.Once(ctx, "consumer-a", d, effect))
	}
	assert.Equal(t, 1, effects(), "a redelivered message has its effect once")

	require.NoError(t, in.Once(ctx, "consumer-b", d, effect))
	assert.Equal(t, 2, effects(), "another consumer handles the same message on its own")
}

func TestBatchHandlesEachNewMessageOnceInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, in := setup(t, "message_id text, txid xid8")

	delivery := func(order string) rabbit.Delivery {
		return rabbit.Delivery{MessageID: uuid.NewString(), Type: "order.created", CorrelationID: order, Body: []byte(`{}`)}
	}
	done := delivery("order-b")
	require.NoError(t, in.Once(ctx, "c", done, func(pgx.Tx) error { return nil }), "handled before the batch")
	first, second := delivery("order-b"), delivery("order-a")
	var order []string
	var afters int
	step := func(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) {
		order = append(order, d.MessageID)
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1, pg_current_xact_id())", d.MessageID); err != nil {
			return nil, err
		}
		return func() { afters++ }, outbox.Add(ctx, tx, emitted(t, d))
	}
	var committed []events.Message
	in.Committed = func(msgs []events.Message) { committed = append(committed, msgs...) }
	errs := in.Batch(ctx, "c", []rabbit.Delivery{first, done, second, first}, step)
	assert.Equal(t, []error{nil, nil, nil, nil}, errs)
	assert.Equal(t, []string{second.MessageID, first.MessageID}, order,
		"new messages only, once each, ordered by correlation id")
	assert.Equal(t, 2, afters, "after runs once per handled message, after the commit")
	assert.Len(t, committed, 2, "the batch's outbox messages are handed over once committed")
	var rows, txs int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT txid) FROM effects").Scan(&rows, &txs))
	assert.Equal(t, 2, rows)
	assert.Equal(t, 1, txs, "one transaction for the batch")
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT xmin::text) FROM outbox").Scan(&rows, &txs))
	assert.Equal(t, 2, rows, "each handled message's event is in the outbox")
	assert.Equal(t, 1, txs, "written by the batch's transaction")
}

// emitted is the event a handler of d emits.
func emitted(t testing.TB, d rabbit.Delivery) events.Message {
	t.Helper()
	id := uuid.New()
	m, err := events.New(events.TypeOrderPaid, id, events.OrderPaid{OrderID: id, PaymentID: uuid.New()})
	require.NoError(t, err)
	return m.CausedBy(d.MessageID)
}

func TestBatchWithAFailingMessageHandlesEachAlone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, in := setup(t, "message_id text")

	// The second fails, the third panics, the first and last are fine.
	ds := make([]rabbit.Delivery, 4)
	for i := range ds {
		ds[i] = rabbit.Delivery{MessageID: uuid.NewString(), Type: "order.created", CorrelationID: uuid.NewString(), Body: []byte(`{}`)}
	}
	boom := errors.New("boom")
	step := func(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) {
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", d.MessageID); err != nil {
			return nil, err
		}
		if err := outbox.Add(ctx, tx, emitted(t, d)); err != nil {
			return nil, err
		}
		switch d.MessageID {
		case ds[1].MessageID:
			return nil, boom
		case ds[2].MessageID:
			panic("handler bug")
		}
		return nil, nil
	}
	var committed []events.Message
	in.Committed = func(msgs []events.Message) { committed = append(committed, msgs...) }
	errs := in.Batch(ctx, "c", ds, step)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], boom, "the failing message reports its own error")
	assert.ErrorContains(t, errs[2], "handler panic: handler bug", "a panic fails its own message only")
	assert.NoError(t, errs[3])
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n))
	assert.Equal(t, 2, n, "its neighbours took effect once; it left no trace")
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n))
	assert.Equal(t, 2, n, "and only their events are in the outbox")
	require.Len(t, committed, 2, "and only theirs are handed over for publishing")
	for _, m := range committed {
		assert.Contains(t, []string{ds[0].MessageID, ds[3].MessageID}, m.CausationID)
	}

	errs = in.Batch(ctx, "c", ds, func(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) { return nil, nil })
	assert.Equal(t, []error{nil, nil, nil, nil}, errs)
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n))
	assert.Equal(t, 2, n, "a retry of the whole batch repeats nothing")
}
