package order

import (
	"context"
	"io"
	"log/slog"
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
	"github.com/ordersaga/ordersaga/libs/inbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

func newService(t testing.TB, timeout time.Duration) (*Service, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := postgres.Connect(ctx, testinfra.Database(t), 16)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, log, db.Messaging(), db.Order()))
	reg := prometheus.NewRegistry()
	return NewService(pool, inbox.New(pool, reg), log, timeout, reg), pool
}

func delivery(t testing.TB, typ string, orderID uuid.UUID, payload any) rabbit.Delivery {
	t.Helper()
	m, err := events.New(typ, orderID, payload)
	require.NoError(t, err)
	return rabbit.Delivery{MessageID: m.ID.String(), Type: typ, CorrelationID: m.CorrelationID, Body: m.Body, Attempt: 1}
}

func create(t testing.TB, s *Service) uuid.UUID {
	t.Helper()
	id := uuid.New()
	require.NoError(t, s.HandleCommand(context.Background(), delivery(t, events.TypeOrderCreateRequested, id,
		events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{OrderID: id, UserID: uuid.New(), Total: 900, Currency: "USD", PaymentMethod: "tok_visa"}})))
	return id
}

func paymentEvent(t testing.TB, typ string, orderID uuid.UUID) rabbit.Delivery {
	p := events.PaymentEvent{PaymentID: uuid.New(), OrderID: orderID, Amount: 900, Currency: "USD"}
	if typ == events.TypePaymentDeclined || typ == events.TypePaymentFailed {
		p.Reason = "X"
	}
	return delivery(t, typ, orderID, p)
}

func emitted(t testing.TB, pool *pgxpool.Pool, orderID uuid.UUID) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT message_type FROM outbox WHERE correlation_id = $1 ORDER BY id", orderID.String())
	require.NoError(t, err)
	var types []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		types = append(types, s)
	}
	return types
}

func TestPaymentOutcomes(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	cases := []struct {
		name       string
		event      string
		wantStatus string
		wantReason string
		wantEmit   string
	}{
		{"approved", events.TypePaymentApproved, StatusPaid, "", events.TypeOrderPaid},
		{"declined", events.TypePaymentDeclined, StatusCancelled, events.ReasonPaymentDeclined, events.TypeOrderCancelled},
		{"failed", events.TypePaymentFailed, StatusFailed, "", events.TypeOrderFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := create(t, s)
			d := paymentEvent(t, tc.event, id)
			require.NoError(t, s.HandlePaymentEvent(ctx, d))
			require.NoError(t, s.HandlePaymentEvent(ctx, d), "redelivery")
			o, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus, o.Status)
			if tc.wantReason != "" && assert.NotNil(t, o.CancelReason) {
				assert.Equal(t, tc.wantReason, *o.CancelReason)
			}
			assert.Equal(t, []string{events.TypeOrderCreated, tc.wantEmit}, emitted(t, pool, id))
		})
	}
}

func TestStaleEventsNeverMoveAnOrderBackwards(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	id := create(t, s)
	require.NoError(t, s.HandleCommand(ctx, delivery(t, events.TypeOrderCancelRequested, id,
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	// The payment was approved meanwhile; the payment service refunds it
	// on its own when it sees order.cancelled.
	for _, typ := range []string{events.TypePaymentApproved, events.TypePaymentFailed, events.TypePaymentDeclined, events.TypePaymentRefunded} {
		require.NoError(t, s.HandlePaymentEvent(ctx, paymentEvent(t, typ, id)), typ)
	}
	o, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, StatusCancelled, o.Status)
	assert.Equal(t, events.ReasonUserRequested, *o.CancelReason)
	assert.Equal(t, []string{events.TypeOrderCreated, events.TypeOrderCancelled}, emitted(t, pool, id))

	// Cancelling a cancelled order again changes nothing.
	require.NoError(t, s.HandleCommand(ctx, delivery(t, events.TypeOrderCancelRequested, id,
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	assert.Len(t, emitted(t, pool, id), 2)
}

func TestCancelAfterPaidEmitsPreviousStatus(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	id := create(t, s)
	require.NoError(t, s.HandlePaymentEvent(ctx, paymentEvent(t, events.TypePaymentApproved, id)))
	require.NoError(t, s.HandleCommand(ctx, delivery(t, events.TypeOrderCancelRequested, id,
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	var body []byte
	require.NoError(t, pool.QueryRow(ctx, "SELECT body FROM outbox WHERE correlation_id = $1 AND message_type = $2",
		id.String(), events.TypeOrderCancelled).Scan(&body))
	assert.JSONEq(t, `{"orderId":"`+id.String()+`","reason":"USER_REQUESTED","previousStatus":"PAID"}`, string(body))
}

func TestUnknownOrdersArePermanentFailures(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, time.Hour)
	ctx := context.Background()
	id := uuid.New()
	err := s.HandleCommand(ctx, delivery(t, events.TypeOrderCancelRequested, id, events.OrderCancelRequested{OrderID: id, Reason: "USER_REQUESTED"}))
	assert.True(t, rabbit.IsPermanent(err), "cancel of an unknown order: %v", err)
	err = s.HandlePaymentEvent(ctx, paymentEvent(t, events.TypePaymentApproved, id))
	assert.True(t, rabbit.IsPermanent(err), "payment of an unknown order: %v", err)
	err = s.HandleCommand(ctx, rabbit.Delivery{MessageID: "m", Type: events.TypeOrderCreated, Body: []byte(`{}`)})
	assert.True(t, rabbit.IsPermanent(err), "an event on the command queue: %v", err)
}

func TestTimeoutSweepCancelsOverdueOrdersOnce(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Minute)
	ctx := context.Background()
	var overdue []uuid.UUID
	for range 30 {
		overdue = append(overdue, create(t, s))
	}
	paid := create(t, s)
	require.NoError(t, s.HandlePaymentEvent(ctx, paymentEvent(t, events.TypePaymentApproved, paid)))
	// Age the 30 (and the paid one) past the timeout instead of waiting.
	_, err := pool.Exec(ctx, "UPDATE orders SET created_at = created_at - interval '2 minutes'")
	require.NoError(t, err)
	fresh := create(t, s)

	// Two instances sweep at once.
	var wg sync.WaitGroup
	var counts [2]int
	for i := range 2 {
		wg.Go(func() {
			n, err := s.SweepTimeouts(ctx)
			assert.NoError(t, err)
			counts[i] = n
		})
	}
	wg.Wait()
	assert.Equal(t, len(overdue), counts[0]+counts[1], "each overdue order swept by exactly one instance")
	for _, id := range overdue {
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, StatusCancelled, o.Status)
		assert.Equal(t, events.ReasonPaymentTimeout, *o.CancelReason)
		assert.Equal(t, []string{events.TypeOrderCreated, events.TypeOrderCancelled}, emitted(t, pool, id))
	}
	o, err := s.Get(ctx, paid)
	require.NoError(t, err)
	assert.Equal(t, StatusPaid, o.Status, "a paid order is no longer waiting")
	o, err = s.Get(ctx, fresh)
	require.NoError(t, err)
	assert.Equal(t, StatusPendingPayment, o.Status, "an order within its timeout waits on")
}
