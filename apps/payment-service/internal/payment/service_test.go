package payment

import (
	"context"
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
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/uow/uowtest"
	"github.com/ordersaga/ordersaga/saga"
)

// harness is the payment service over a fresh database, with its
// handlers routed as the participant routes them.
type harness struct {
	*Service
	router *uow.Router
}

func newService(t testing.TB, g Gateway) (*harness, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t, 16, db.Messaging(), db.Payment())
	reg := prometheus.NewRegistry()
	runner := uow.NewRunner(pool, nil, reg)
	svc := NewService(runner, slog.New(slog.DiscardHandler), g, reg)
	router, err := uow.NewRouter(runner, saga.TopologyOf(ServiceName), svc.Handlers()...)
	require.NoError(t, err, "the handlers match the subscriptions")
	return &harness{Service: svc, router: router}, pool
}

// handle handles ds as one batch of the consumer of the order events.
func (h *harness) handle(ctx context.Context, ds ...rabbit.Delivery) []error {
	return h.router.Handler(saga.QueuePaymentOrderEvents)(ctx, ds)
}

// handleOne handles d alone.
func (h *harness) handleOne(ctx context.Context, d rabbit.Delivery) error { return h.handle(ctx, d)[0] }

func created(t testing.TB, orderID uuid.UUID, method string) rabbit.Delivery {
	return uowtest.Delivery(t, orderID.String(), events.OrderCreated{OrderPlaced: events.OrderPlaced{
		OrderID: orderID, UserID: uuid.New(), Total: 1500, Currency: "EUR", PaymentMethod: method}})
}

func cancelled(t testing.TB, orderID uuid.UUID, previous string) rabbit.Delivery {
	return uowtest.Delivery(t, orderID.String(), events.OrderCancelled{
		OrderID: orderID, Reason: events.ReasonUserRequested, PreviousStatus: previous, UserID: uuid.New()})
}

func TestCancellationBeforeCreationIsNeverCharged(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, Gateway{Limit: 1_000_000})
	ctx := context.Background()
	id := uuid.New()
	require.NoError(t, s.handleOne(ctx, cancelled(t, id, "PENDING_PAYMENT")))
	_, err := s.ByOrder(ctx, id)
	require.ErrorIs(t, err, ErrNotFound, "nothing to cancel yet")

	require.NoError(t, s.handleOne(ctx, created(t, id, "tok_visa")))
	p, err := s.ByOrder(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, StatusCancelled, p.Status)
	assert.Equal(t, int64(1500), p.Amount, "the payment shows what was not charged")
	assert.Equal(t, []string{events.TypePaymentCancelled}, uowtest.Emitted(t, pool, id.String()))
}

func TestConcurrentCreateAndCancelNeverLeaveMoneyHeld(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, Gateway{Limit: 1_000_000})
	ctx := context.Background()
	const orders = 40
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, orders)
	for i := range orders {
		ids[i] = uuid.New()
		c, x := created(t, ids[i], "tok_visa"), cancelled(t, ids[i], "PENDING_PAYMENT")
		wg.Go(func() { assert.NoError(t, s.handleOne(ctx, c)) })
		wg.Go(func() { assert.NoError(t, s.handleOne(ctx, x)) })
	}
	wg.Wait()
	for _, id := range ids {
		p, err := s.ByOrder(ctx, id)
		require.NoError(t, err)
		assert.Contains(t, []string{StatusCancelled, StatusRefunded}, p.Status, "order %s holds no money", id)
		switch p.Status {
		case StatusRefunded:
			assert.Equal(t, []string{events.TypePaymentApproved, events.TypePaymentRefunded}, uowtest.Emitted(t, pool, id.String()))
		case StatusCancelled:
			assert.Equal(t, []string{events.TypePaymentCancelled}, uowtest.Emitted(t, pool, id.String()))
		}
	}
}

func TestRedeliveredAndDuplicatedCreationChargesOnce(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, Gateway{Limit: 1_000_000})
	ctx := context.Background()
	id := uuid.New()
	d := created(t, id, "tok_visa")
	for range 3 {
		require.NoError(t, s.handleOne(ctx, d))
	}
	// The same fact under another message id (a re-published duplicate).
	require.NoError(t, s.handleOne(ctx, created(t, id, "tok_visa")))
	assert.Equal(t, []string{events.TypePaymentApproved}, uowtest.Emitted(t, pool, id.String()))
	page, total, err := s.List(ctx, nil, nil, 10, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1), total)
	assert.Len(t, page, 1)
	var owner uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT user_id FROM payments`).Scan(&owner))
	_, total, err = s.List(ctx, nil, &owner, 10, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1), total, "the payment of its user")
	other := uuid.New()
	page, total, err = s.List(ctx, nil, &other, 10, 0)
	require.NoError(t, err)
	assert.Zero(t, total, "none of another user")
	assert.Empty(t, page)
}

func TestLatencyDecisionAndCancelDuringTheWait(t *testing.T) {
	t.Parallel()
	// The latency is the window in which the steps up to the cancellation
	// must run: seconds, for a loaded machine.
	s, pool := newService(t, Gateway{Limit: 1_000_000, Latency: 5 * time.Second})
	ctx := context.Background()
	approved, cancelledWhileWaiting := uuid.New(), uuid.New()
	require.NoError(t, s.handleOne(ctx, created(t, approved, "tok_visa")))
	require.NoError(t, s.handleOne(ctx, created(t, cancelledWhileWaiting, "tok_visa")))
	for _, id := range []uuid.UUID{approved, cancelledWhileWaiting} {
		p, err := s.ByOrder(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, StatusProcessing, p.Status, "waiting for the gateway")
	}
	n, err := s.DecideDue(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is due before the latency has passed")

	require.NoError(t, s.handleOne(ctx, cancelled(t, cancelledWhileWaiting, "PENDING_PAYMENT")))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.RunDecider(runCtx) }()
	defer func() { stop(); <-done }()
	require.Eventually(t, func() bool {
		p, err := s.ByOrder(ctx, approved)
		return err == nil && p.Status == StatusApproved
	}, 30*time.Second, 10*time.Millisecond)
	p, err := s.ByOrder(ctx, cancelledWhileWaiting)
	require.NoError(t, err)
	assert.Equal(t, StatusCancelled, p.Status, "a cancelled payment is never decided")
	assert.Equal(t, []string{events.TypePaymentCancelled}, uowtest.Emitted(t, pool, cancelledWhileWaiting.String()))
	assert.Equal(t, []string{events.TypePaymentApproved}, uowtest.Emitted(t, pool, approved.String()))

	// The user cancels after approval: refunded.
	require.NoError(t, s.handleOne(ctx, cancelled(t, approved, "PAID")))
	p, err = s.ByOrder(ctx, approved)
	require.NoError(t, err)
	assert.Equal(t, StatusRefunded, p.Status)
	assert.Equal(t, []string{events.TypePaymentApproved, events.TypePaymentRefunded}, uowtest.Emitted(t, pool, approved.String()))
}

func TestInvalidAndIrrelevantEvents(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, Gateway{Limit: 1_000_000})
	ctx := context.Background()
	err := s.handleOne(ctx, rabbit.Delivery{MessageID: "x", Type: events.TypeOrderCreated, Body: []byte(`{"orderId":1}`)})
	assert.True(t, rabbit.IsPermanent(err), "an invalid payload is permanent: %v", err)
	err = s.handleOne(ctx, rabbit.Delivery{MessageID: "y", Type: "order.shipped", Body: []byte(`{}`)})
	assert.True(t, rabbit.IsPermanent(err), "an unknown type is permanent: %v", err)
	id := uuid.New()
	outcome := events.OrderOutcome{OrderID: id, PaymentID: uuid.New(), UserID: uuid.New()}
	assert.NoError(t, s.handleOne(ctx, uowtest.Delivery(t, id.String(), events.OrderPaid{OrderOutcome: outcome})),
		"order.paid needs nothing from the payment service")
	assert.NoError(t, s.handleOne(ctx, uowtest.Delivery(t, id.String(), events.OrderFailed{OrderOutcome: outcome})),
		"nor does order.failed")
	entries, err := s.Timeline(ctx, id)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "both are in the order's timeline")
}

func TestDueDecisionsOfOneBatchKeepTheirOwnOutcome(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, Gateway{Limit: 1_000_000, Latency: 50 * time.Millisecond})
	ctx := context.Background()
	cases := []struct {
		method, status, reason, event string
	}{
		{"tok_visa", StatusApproved, "", events.TypePaymentApproved},
		{"tok_decline", StatusDeclined, "CARD_DECLINED", events.TypePaymentDeclined},
		{"tok_fail", StatusFailed, "GATEWAY_ERROR", events.TypePaymentFailed},
		{"tok_insufficient_funds", StatusDeclined, "INSUFFICIENT_FUNDS", events.TypePaymentDeclined},
	}
	ids := make([]uuid.UUID, len(cases))
	var ds []rabbit.Delivery
	for i, c := range cases {
		ids[i] = uuid.New()
		ds = append(ds, created(t, ids[i], c.method))
	}
	assert.Equal(t, make([]error, len(ds)), s.handle(ctx, ds...), "created in one batch")
	decided := 0
	require.Eventually(t, func() bool {
		n, err := s.DecideDue(ctx)
		require.NoError(t, err)
		decided += n
		return decided == len(cases)
	}, 10*time.Second, 10*time.Millisecond, "all due payments decided")
	for i, c := range cases {
		p, err := s.ByOrder(ctx, ids[i])
		require.NoError(t, err)
		assert.Equal(t, c.status, p.Status, c.method)
		if c.reason == "" {
			assert.Nil(t, p.Reason, "%s: no reason", c.method)
		} else if assert.NotNil(t, p.Reason, c.method) {
			assert.Equal(t, c.reason, *p.Reason, c.method)
		}
		assert.Equal(t, []string{c.event}, uowtest.Emitted(t, pool, ids[i].String()), c.method)
	}
}
