package uow_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// dispatched collects what a runner hands to the relay.
type dispatched struct {
	mu   sync.Mutex
	msgs []events.Message
}

func (d *dispatched) add(msgs []events.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
}

func (d *dispatched) all() []events.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]events.Message(nil), d.msgs...)
}

// setup returns a fresh database with the messaging schema and a table
// effects(columns), and a runner over it.
func setup(t *testing.T, columns string) (*pgxpool.Pool, *uow.Runner, *dispatched) {
	t.Helper()
	pool := pgtest.Pool(t, 4, db.Messaging())
	_, err := pool.Exec(context.Background(), "CREATE TABLE effects ("+columns+")")
	require.NoError(t, err)
	d := &dispatched{}
	return pool, uow.NewRunner(pool, d.add, prometheus.NewRegistry()), d
}

func count(t testing.TB, pool *pgxpool.Pool, query string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), query).Scan(&n))
	return n
}

// paid is the event a handler emits.
func paid() events.OrderPaid {
	return events.OrderPaid{OrderOutcome: events.OrderOutcome{OrderID: uuid.New(), PaymentID: uuid.New(), UserID: uuid.New()}}
}

func delivery(order string) rabbit.Delivery {
	return rabbit.Delivery{MessageID: uuid.NewString(), Type: events.TypeOrderCreated, CorrelationID: order, Body: []byte(`{}`)}
}

func TestInTxPublishesWhatItCommittedOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, r, sent := setup(t, "n int")
	var after int
	require.NoError(t, r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES (1)"); err != nil {
			return err
		}
		tx.AfterCommit(func() { after++ })
		assert.Empty(t, tx.Cause(), "nothing causes a sweep's events")
		return errors.Join(tx.Emit(paid(), "o-1"), tx.Emit(paid(), "o-2"))
	}))
	assert.Equal(t, 1, after, "after-commit functions run once committed")
	require.Len(t, sent.all(), 2, "the emitted messages are dispatched once committed")
	assert.Equal(t, events.TypeOrderPaid, sent.all()[0].Type, "of their payload's type")
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM outbox"))
	assert.Equal(t, 1, count(t, pool, "SELECT count(DISTINCT xmin::text) FROM outbox"), "in one statement")

	boom := errors.New("boom")
	err := r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		tx.AfterCommit(func() { after++ })
		if err := tx.Emit(paid(), "o-3"); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 1, after, "nothing runs after a rollback")
	assert.Len(t, sent.all(), 2, "nothing rolled back is dispatched")
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM outbox"))
}

func TestBatchHandlesEachNewMessageOnceInOneTransaction(t *testing.T) {
	t.Parallel()
	pool, r, sent := setup(t, "message_id text, txid xid8")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	done := delivery("order-b")
	require.Equal(t, []error{nil}, r.Batch(ctx, "c", []rabbit.Delivery{done}, func(context.Context, *uow.Tx, int) error { return nil }),
		"handled before the batch")
	first, second := delivery("order-b"), delivery("order-a")
	ds := []rabbit.Delivery{first, done, second, first}
	var order []string
	var afters int
	step := func(ctx context.Context, tx *uow.Tx, i int) error {
		order = append(order, ds[i].MessageID)
		assert.Equal(t, ds[i].MessageID, tx.Cause())
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1, pg_current_xact_id())", ds[i].MessageID); err != nil {
			return err
		}
		tx.AfterCommit(func() { afters++ })
		return tx.Emit(paid(), ds[i].CorrelationID)
	}
	errs := r.Batch(ctx, "c", ds, step)
	assert.Equal(t, []error{nil, nil, nil, nil}, errs)
	assert.Equal(t, []string{second.MessageID, first.MessageID}, order,
		"new messages only, once each, ordered by correlation id")
	assert.Equal(t, 2, afters, "after-commit functions run once per handled message")
	require.Len(t, sent.all(), 2, "the batch's outbox messages are handed over once committed")
	for _, m := range sent.all() {
		assert.Contains(t, []string{first.MessageID, second.MessageID}, m.CausationID, "caused by the message handled")
	}
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM effects"))
	assert.Equal(t, 1, count(t, pool, "SELECT count(DISTINCT txid) FROM effects"), "one transaction for the batch")
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM outbox"), "each handled message's event is in the outbox")
	assert.Equal(t, 1, count(t, pool, "SELECT count(DISTINCT xmin::text) FROM outbox"), "written by the batch's transaction")
}

func TestBatchWithAFailingMessageHandlesEachAlone(t *testing.T) {
	t.Parallel()
	pool, r, sent := setup(t, "message_id text")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The second fails, the third panics, the first and last are fine.
	ds := make([]rabbit.Delivery, 4)
	for i := range ds {
		ds[i] = delivery(uuid.NewString())
	}
	boom := errors.New("boom")
	step := func(ctx context.Context, tx *uow.Tx, i int) error {
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", ds[i].MessageID); err != nil {
			return err
		}
		if err := tx.Emit(paid(), ds[i].CorrelationID); err != nil {
			return err
		}
		switch i {
		case 1:
			return boom
		case 2:
			panic("handler bug")
		}
		return nil
	}
	errs := r.Batch(ctx, "c", ds, step)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], boom, "the failing message reports its own error")
	assert.ErrorContains(t, errs[2], "handler panic: handler bug", "a panic fails its own message only")
	assert.NoError(t, errs[3])
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM effects"), "its neighbours took effect once; it left no trace")
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM outbox"), "and only their events are in the outbox")
	require.Len(t, sent.all(), 2, "and only theirs are handed over for publishing")
	for _, m := range sent.all() {
		assert.Contains(t, []string{ds[0].MessageID, ds[3].MessageID}, m.CausationID)
	}

	errs = r.Batch(ctx, "c", ds, func(context.Context, *uow.Tx, int) error { return nil })
	assert.Equal(t, []error{nil, nil, nil, nil}, errs)
	assert.Equal(t, 2, count(t, pool, "SELECT count(*) FROM effects"), "a retry of the whole batch repeats nothing")
	errs = r.Batch(ctx, "another consumer", ds[:1], func(ctx context.Context, tx *uow.Tx, i int) error {
		_, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", ds[i].MessageID)
		return err
	})
	assert.Equal(t, []error{nil}, errs)
	assert.Equal(t, 3, count(t, pool, "SELECT count(*) FROM effects"), "another consumer handles the same message on its own")
}

// TestInboxKeepsTheAttemptAndTheBodyOfACommand: the claim records the
// attempt that handled a message and the error of the one before, and the
// body of a command only (an event's body is in its emitter's outbox),
// whether the message was handled in a batch or alone.
func TestInboxKeepsTheAttemptAndTheBodyOfACommand(t *testing.T) {
	t.Parallel()
	pool, r, _ := setup(t, "n int")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	command := func(attempt int, lastError string) rabbit.Delivery {
		d := delivery(uuid.NewString())
		d.Type, d.Body = events.TypeOrderCancelRequested, []byte(`{"orderId":"`+d.CorrelationID+`","reason":"r"}`)
		d.Attempt, d.LastError = attempt, lastError
		return d
	}
	event := delivery(uuid.NewString())
	event.Attempt = 1
	retried, first := command(3, "database timeout"), command(1, "")
	// Cut in the middle of a character (the consumer bounds the header's
	// bytes), with a NUL: Postgres's text refuses both.
	garbled := command(2, "broken \x00é"[:len("broken \x00é")-1])
	unset := command(0, "") // built by hand, without an Attempt
	ok := func(context.Context, *uow.Tx, int) error { return nil }

	for _, tc := range []struct {
		name string
		ds   []rabbit.Delivery
	}{
		{"in a batch", []rabbit.Delivery{retried, first, event, garbled}},
		{"alone", []rabbit.Delivery{unset}},
	} {
		require.Equal(t, make([]error, len(tc.ds)), r.Batch(ctx, "c", tc.ds, ok), tc.name)
	}
	type row struct {
		Attempt   int16
		LastError string
		Body      []byte
	}
	read := func(d rabbit.Delivery) row {
		var got row
		require.NoError(t, pool.QueryRow(ctx, "SELECT attempt, last_error, body FROM inbox WHERE message_id = $1", d.MessageID).
			Scan(&got.Attempt, &got.LastError, &got.Body))
		return got
	}
	assert.Equal(t, row{3, "database timeout", retried.Body}, read(retried), "handled at its third attempt: a retried command")
	assert.Equal(t, row{1, "", first.Body}, read(first), "a command handled at once")
	assert.Equal(t, row{1, "", unset.Body}, read(unset), "a delivery without an attempt is a first one")
	assert.Equal(t, row{1, "", nil}, read(event), "an event's body is not copied")
	assert.Equal(t, row{2, "broken \uFFFD", garbled.Body}, read(garbled), "an error that is not text is made text")
}
