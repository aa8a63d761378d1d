package payment

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/payment/paymentdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// ServiceName is how the payment service names itself in timelines.
const ServiceName = "payment-service"

// ReasonOrderCancelled prefixes the reason of a payment cancelled or
// refunded because its order was cancelled; the order's reason follows.
const ReasonOrderCancelled = "ORDER_CANCELLED"

// Service runs the payment side of the saga.
type Service struct {
	pool    *pgxpool.Pool
	uow     *uow.Runner
	log     *slog.Logger
	gateway Gateway
	// wake nudges the decider when a payment starts waiting for the gateway.
	wake chan struct{}
	// wakeAt is when the sleeping decider wakes by itself (Unix ns).
	wakeAt   atomic.Int64
	outcomes *prometheus.CounterVec
}

// NewService returns the payment service, writing through runner and
// charging through gateway.
func NewService(runner *uow.Runner, log *slog.Logger, gateway Gateway, reg prometheus.Registerer) *Service {
	s := &Service{pool: runner.Pool(), uow: runner, log: log, gateway: gateway, wake: make(chan struct{}, 1),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_payment_outcomes_total",
			Help: "Payments reaching a status other than PROCESSING, by status and reason.",
		}, []string{"status", "reason"}),
	}
	reg.MustRegister(s.outcomes)
	return s
}

// Handlers returns the handlers of the messages the payment service
// consumes (its consumes lines in saga/saga.conf).
func (s *Service) Handlers() []uow.Handler {
	return []uow.Handler{
		uow.On(s.orderCreated),
		uow.On(s.orderCancelled),
		// order.paid and order.failed only confirm what this service
		// decided: nothing to do but remember them for the timeline.
		uow.Record[events.OrderPaid](),
		uow.Record[events.OrderFailed](),
	}
}

// settled emits the event of payments that reached a new status and counts
// them once tx committed.
func (s *Service) settled(tx *uow.Tx, payments ...paymentdb.Payment) error {
	for _, p := range payments {
		e, err := event(p)
		if err != nil {
			return err
		}
		if err := tx.Emit(e, p.OrderID.String()); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() {
		for _, p := range payments {
			reason := ""
			if p.Reason != nil {
				reason = *p.Reason
			}
			s.outcomes.WithLabelValues(p.Status, reason).Inc()
		}
	})
	return nil
}

// event is the payment event that tells p's new status.
func event(p paymentdb.Payment) (events.Payload, error) {
	o := events.PaymentOutcome{PaymentID: p.ID, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency}
	refusal := func() events.PaymentRefusal {
		r := events.PaymentRefusal{PaymentOutcome: o}
		if p.Reason != nil {
			r.Reason = *p.Reason
		}
		return r
	}
	switch p.Status {
	case StatusApproved:
		return events.PaymentApproved{PaymentOutcome: o}, nil
	case StatusDeclined:
		return events.PaymentDeclined{PaymentRefusal: refusal()}, nil
	case StatusFailed:
		return events.PaymentFailed{PaymentRefusal: refusal()}, nil
	case StatusCancelled:
		return events.PaymentCancelled{PaymentOutcome: o}, nil
	case StatusRefunded:
		return events.PaymentRefunded{PaymentOutcome: o}, nil
	default:
		return nil, fmt.Errorf("payment %s: no event tells status %s", p.ID, p.Status)
	}
}

// orderCreated creates the payment of a new order. With no gateway latency
// it is decided in the same transaction; otherwise it waits, PROCESSING,
// for the decider, which is nudged once it is committed. An order cancelled
// before it was created gets a CANCELLED payment: it is never charged.
func (s *Service) orderCreated(ctx context.Context, tx *uow.Tx, e *events.OrderCreated) error {
	o := e.OrderPlaced
	q := paymentdb.New(tx)
	// The lock goes out with the insert, in one round trip (uow.Tx.Deferred).
	if err := paymentdb.New(tx.Deferred()).LockOrderPayments(ctx, o.OrderID.String()); err != nil {
		return fmt.Errorf("lock payments of order %s: %w", o.OrderID, err)
	}
	now := time.Now().UTC()
	p := paymentdb.CreatePaymentParams{
		ID: events.NewID(), OrderID: o.OrderID, UserID: o.UserID, Amount: o.Total, Currency: o.Currency,
		PaymentMethod: o.PaymentMethod, Status: StatusProcessing, DecideAt: now.Add(s.gateway.Latency), Now: now,
	}
	if s.gateway.Latency == 0 {
		status, reason := s.gateway.Decide(o.PaymentMethod, o.Total)
		p.Status = status
		if reason != "" {
			p.Reason = &reason
		}
	}
	n, err := q.CreatePayment(ctx, p)
	if err != nil {
		return fmt.Errorf("create payment for order %s: %w", o.OrderID, err)
	}
	if n == 1 {
		if p.Status == StatusProcessing {
			tx.AfterCommit(func() { s.nudge(p.DecideAt) })
			return nil
		}
		return s.settled(tx, paymentdb.Payment{ID: p.ID, OrderID: p.OrderID, Amount: p.Amount,
			Currency: p.Currency, Status: p.Status, Reason: p.Reason})
	}
	// Either the order has its payment already (a duplicate order.created
	// under another message id), or it was cancelled before it was created.
	early, err := q.GetEarlyCancellation(ctx, o.OrderID)
	if postgres.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create payment for order %s: %w", o.OrderID, err)
	}
	reason := ReasonOrderCancelled + ": " + early.Reason
	n, err = q.CreateCancelledPayment(ctx, paymentdb.CreateCancelledPaymentParams{
		ID: p.ID, OrderID: p.OrderID, UserID: p.UserID, Amount: p.Amount, Currency: p.Currency,
		PaymentMethod: p.PaymentMethod, Reason: &reason, Now: now,
	})
	if err != nil || n == 0 {
		return err
	}
	return s.settled(tx, paymentdb.Payment{ID: p.ID, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency,
		Status: StatusCancelled, Reason: &reason})
}

// orderCancelled undoes the payment of a cancelled order: a PROCESSING
// payment is cancelled before it is charged, an APPROVED one refunded. With
// no payment yet, the cancellation is remembered for the order.created
// still to come.
func (s *Service) orderCancelled(ctx context.Context, tx *uow.Tx, e *events.OrderCancelled) error {
	q, later := paymentdb.New(tx), paymentdb.New(tx.Deferred())
	// The lock goes out with the payment's read, the early cancellation with
	// the commit: one round trip each fewer (uow.Tx.Deferred).
	if err := later.LockOrderPayments(ctx, e.OrderID.String()); err != nil {
		return fmt.Errorf("lock payments of order %s: %w", e.OrderID, err)
	}
	p, err := q.LockPaymentByOrder(ctx, e.OrderID)
	if postgres.IsNotFound(err) {
		return later.AddEarlyCancellation(ctx, paymentdb.AddEarlyCancellationParams{OrderID: e.OrderID, Reason: e.Reason})
	}
	if err != nil {
		return fmt.Errorf("cancel payment of order %s: %w", e.OrderID, err)
	}
	var to string
	switch p.Status {
	case StatusProcessing:
		to = StatusCancelled
	case StatusApproved:
		to = StatusRefunded
	default:
		// Declined, failed, cancelled or refunded: it holds no money.
		return nil
	}
	reason := ReasonOrderCancelled + ": " + e.Reason
	p, err = q.TransitionPayment(ctx, paymentdb.TransitionPaymentParams{ID: p.ID, FromStatus: p.Status, ToStatus: to, Reason: &reason})
	if err != nil {
		return fmt.Errorf("cancel payment %s: %w", p.ID, err)
	}
	return s.settled(tx, p)
}

// nudge wakes the decider if a payment due at decideAt would otherwise wait
// past it. With a constant gateway latency a new payment is due after every
// waiting one, so the decider, already sleeping until the first of those,
// is rarely disturbed.
func (s *Service) nudge(decideAt time.Time) {
	if decideAt.UnixNano() >= s.wakeAt.Load() {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

const decideBatch = 200

// RunDecider settles, until ctx ends, every PROCESSING payment whose gateway
// latency has passed. No handler waits for the gateway: a payment waits as a
// row, so the simulated delay holds no worker, connection or prefetch slot,
// and a crash during the wait only delays the decision. Rows are claimed
// with SKIP LOCKED, so every instance may decide.
func (s *Service) RunDecider(ctx context.Context) error {
	const poll = time.Second
	for {
		// While it works any new payment may be the next due: be nudged.
		s.wakeAt.Store(math.MaxInt64)
		decided, failed := 0, false
		for {
			n, err := s.DecideDue(ctx)
			decided += n
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("payment decisions failed", "error", err)
				failed = true
				break
			}
			if n < decideBatch {
				break
			}
		}
		wait := poll
		if due, err := paymentdb.New(s.pool).NextDue(ctx); err == nil {
			wait = min(max(time.Until(due), 0), poll)
		}
		if decided == 0 || failed {
			// The first due payment is locked (a cancellation of it is
			// committing, or another instance decides it) or the database
			// fails: do not spin on it.
			wait = max(wait, 25*time.Millisecond)
		}
		s.wakeAt.Store(time.Now().Add(wait).UnixNano())
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// DecideDue decides one batch of due payments and returns its size.
func (s *Service) DecideDue(ctx context.Context) (int, error) {
	n := 0
	err := s.uow.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		q := paymentdb.New(tx)
		due, err := q.ClaimDuePayments(ctx, paymentdb.ClaimDuePaymentsParams{Now: time.Now().UTC(), RowLimit: decideBatch})
		if err != nil || len(due) == 0 {
			return err
		}
		// One statement decides the batch, one writes its events.
		var d paymentdb.DecidePaymentsParams
		for _, p := range due {
			status, reason := s.gateway.Decide(p.PaymentMethod, p.Amount)
			d.Ids = append(d.Ids, p.ID)
			d.Statuses = append(d.Statuses, status)
			d.Reasons = append(d.Reasons, reason)
		}
		decided, err := q.DecidePayments(ctx, d)
		if err != nil {
			return fmt.Errorf("decide %d payments: %w", len(due), err)
		}
		n = len(decided)
		return s.settled(tx, decided...)
	})
	if err != nil {
		return 0, fmt.Errorf("decide due payments: %w", err)
	}
	return n, nil
}

// Get returns one payment.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Payment, error) {
	return s.get(ctx, func(q *paymentdb.Queries) (paymentdb.Payment, error) { return q.GetPayment(ctx, id) })
}

// ByOrder returns the payment of an order.
func (s *Service) ByOrder(ctx context.Context, orderID uuid.UUID) (Payment, error) {
	return s.get(ctx, func(q *paymentdb.Queries) (paymentdb.Payment, error) { return q.GetPaymentByOrder(ctx, orderID) })
}

func (s *Service) get(ctx context.Context, fetch func(*paymentdb.Queries) (paymentdb.Payment, error)) (Payment, error) {
	r, err := fetch(paymentdb.New(s.pool))
	if postgres.IsNotFound(err) {
		return Payment{}, ErrNotFound
	}
	if err != nil {
		return Payment{}, fmt.Errorf("get payment: %w", err)
	}
	return fromRow(r), nil
}

// List returns one page of payments, newest first, and the count of all
// that match status and userID (nil: any).
func (s *Service) List(ctx context.Context, status *string, userID *uuid.UUID, limit, offset int) ([]Payment, int64, error) {
	q := paymentdb.New(s.pool)
	rows, err := q.ListPayments(ctx, paymentdb.ListPaymentsParams{Status: status, UserID: userID, RowLimit: int32(limit), RowOffset: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list payments: %w", err)
	}
	total, err := q.CountPayments(ctx, paymentdb.CountPaymentsParams{Status: status, UserID: userID})
	if err != nil {
		return nil, 0, fmt.Errorf("count payments: %w", err)
	}
	out := make([]Payment, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, total, nil
}

// Stats counts and sums payments by status; every status is listed.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	rows, err := paymentdb.New(s.pool).PaymentStats(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("payment stats: %w", err)
	}
	by := map[string]paymentdb.PaymentStatsRow{}
	for _, r := range rows {
		by[r.Status] = r
	}
	st := Stats{ByStatus: make([]StatusStats, len(Statuses))}
	for i, status := range Statuses {
		st.ByStatus[i] = StatusStats{Status: status, Count: by[status].Count, TotalAmount: by[status].TotalAmount}
	}
	return st, nil
}

// Timeline returns what the payment service received and emitted for an
// order; empty when it has seen nothing of it.
func (s *Service) Timeline(ctx context.Context, orderID uuid.UUID) ([]timeline.Entry, error) {
	return timeline.Read(ctx, s.pool, ServiceName, orderID.String())
}
