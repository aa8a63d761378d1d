package payment

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/payment/paymentdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/inbox"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/timeline"
)

// ServiceName is how the payment service names itself in timelines.
const ServiceName = "payment-service"

// ReasonOrderCancelled prefixes the reason of a payment cancelled or
// refunded because its order was cancelled; the order's reason follows.
const ReasonOrderCancelled = "ORDER_CANCELLED"

// Service runs the payment side of the saga.
type Service struct {
	pool    *pgxpool.Pool
	inbox   *inbox.Inbox
	log     *slog.Logger
	gateway Gateway
	// wake nudges the decider when a payment starts waiting for the gateway.
	wake chan struct{}
	// wakeAt is when the sleeping decider wakes by itself (Unix ns).
	wakeAt   atomic.Int64
	outcomes *prometheus.CounterVec
	// Dispatch, when set, receives the events the decider committed to the
	// outbox, so that the relay publishes them at once.
	Dispatch func([]events.Message)
}

// NewService returns the payment service over pool, charging through gateway.
func NewService(pool *pgxpool.Pool, in *inbox.Inbox, log *slog.Logger, gateway Gateway, reg prometheus.Registerer) *Service {
	s := &Service{pool: pool, inbox: in, log: log, gateway: gateway, wake: make(chan struct{}, 1),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_payment_outcomes_total",
			Help: "Payments reaching a status other than PROCESSING, by status and reason.",
		}, []string{"status", "reason"}),
	}
	reg.MustRegister(s.outcomes)
	return s
}

// record counts the outcomes of payments whose transactions committed.
func (s *Service) record(payments []paymentdb.Payment) {
	for _, p := range payments {
		reason := ""
		if p.Reason != nil {
			reason = *p.Reason
		}
		s.outcomes.WithLabelValues(p.Status, reason).Inc()
	}
}

// HandleOrderEvents handles deliveries of the
// payment-service.order-events queue, in one transaction when it can
// (inbox.Batch).
func (s *Service) HandleOrderEvents(ctx context.Context, ds []rabbit.Delivery) []error {
	return s.inbox.Batch(ctx, events.QueuePaymentOrderEvents, ds, s.orderEvent)
}

// HandleOrderEvent handles one delivery of the payment-service.order-events
// queue.
func (s *Service) HandleOrderEvent(ctx context.Context, d rabbit.Delivery) error {
	return s.HandleOrderEvents(ctx, []rabbit.Delivery{d})[0]
}

func (s *Service) orderEvent(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) {
	p, err := events.Decode(d.Type, d.Body)
	if err != nil {
		return nil, err
	}
	var settled []paymentdb.Payment
	switch e := p.(type) {
	case *events.OrderCreated:
		decideAt, err := s.charge(ctx, tx, d.MessageID, e.OrderPlaced, &settled)
		if err != nil {
			return nil, err
		}
		return func() {
			s.record(settled)
			if !decideAt.IsZero() {
				s.nudge(decideAt)
			}
		}, nil
	case *events.OrderCancelled:
		if err := s.cancel(ctx, tx, d.MessageID, e, &settled); err != nil {
			return nil, err
		}
		return func() { s.record(settled) }, nil
	case *events.OrderPaid:
		// order.paid and order.failed only confirm what this service
		// decided: nothing to do but remember them for the timeline.
		return nil, nil
	default:
		return nil, rabbit.Permanent(fmt.Errorf("%s is not an order event", d.Type))
	}
}

// charge creates the payment of a new order. With no gateway latency it is
// decided in the same transaction; otherwise it waits, PROCESSING, for the
// decider, and charge returns when it is due. An order cancelled before it
// was created gets a CANCELLED payment: it is never charged.
func (s *Service) charge(ctx context.Context, tx pgx.Tx, cause string, o events.OrderPlaced, settled *[]paymentdb.Payment) (decideAt time.Time, err error) {
	q := paymentdb.New(tx)
	if err := q.LockOrderPayments(ctx, o.OrderID.String()); err != nil {
		return time.Time{}, fmt.Errorf("lock payments of order %s: %w", o.OrderID, err)
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
		return time.Time{}, fmt.Errorf("create payment for order %s: %w", o.OrderID, err)
	}
	if n == 1 {
		if p.Status == StatusProcessing {
			return p.DecideAt, nil
		}
		decided := paymentdb.Payment{ID: p.ID, OrderID: p.OrderID, Amount: p.Amount,
			Currency: p.Currency, Status: p.Status, Reason: p.Reason}
		*settled = append(*settled, decided)
		return time.Time{}, emitOutcome(ctx, tx, cause, decided)
	}
	// Either the order has its payment already (a duplicate order.created
	// under another message id), or it was cancelled before it was created.
	early, err := q.GetEarlyCancellation(ctx, o.OrderID)
	if postgres.IsNotFound(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("create payment for order %s: %w", o.OrderID, err)
	}
	reason := ReasonOrderCancelled + ": " + early.Reason
	n, err = q.CreateCancelledPayment(ctx, paymentdb.CreateCancelledPaymentParams{
		ID: p.ID, OrderID: p.OrderID, UserID: p.UserID, Amount: p.Amount, Currency: p.Currency,
		PaymentMethod: p.PaymentMethod, Reason: &reason, Now: now,
	})
	if err != nil || n == 0 {
		return time.Time{}, err
	}
	cancelled := paymentdb.Payment{ID: p.ID, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency,
		Status: StatusCancelled, Reason: &reason}
	*settled = append(*settled, cancelled)
	return time.Time{}, emit(ctx, tx, cause, events.TypePaymentCancelled, cancelled)
}

// cancel undoes the payment of a cancelled order: a PROCESSING payment is
// cancelled before it is charged, an APPROVED one refunded. With no payment
// yet, the cancellation is remembered for the order.created still to come.
func (s *Service) cancel(ctx context.Context, tx pgx.Tx, cause string, e *events.OrderCancelled, settled *[]paymentdb.Payment) error {
	q := paymentdb.New(tx)
	if err := q.LockOrderPayments(ctx, e.OrderID.String()); err != nil {
		return fmt.Errorf("lock payments of order %s: %w", e.OrderID, err)
	}
	p, err := q.LockPaymentByOrder(ctx, e.OrderID)
	if postgres.IsNotFound(err) {
		return q.AddEarlyCancellation(ctx, paymentdb.AddEarlyCancellationParams{OrderID: e.OrderID, Reason: e.Reason})
	}
	if err != nil {
		return fmt.Errorf("cancel payment of order %s: %w", e.OrderID, err)
	}
	var to, typ string
	switch p.Status {
	case StatusProcessing:
		to, typ = StatusCancelled, events.TypePaymentCancelled
	case StatusApproved:
		to, typ = StatusRefunded, events.TypePaymentRefunded
	default:
		// Declined, failed, cancelled or refunded: it holds no money.
		return nil
	}
	reason := ReasonOrderCancelled + ": " + e.Reason
	p, err = q.TransitionPayment(ctx, paymentdb.TransitionPaymentParams{ID: p.ID, FromStatus: p.Status, ToStatus: to, Reason: &reason})
	if err != nil {
		return fmt.Errorf("cancel payment %s: %w", p.ID, err)
	}
	*settled = append(*settled, p)
	return emit(ctx, tx, cause, typ, p)
}

func emitOutcome(ctx context.Context, tx pgx.Tx, cause string, p paymentdb.Payment) error {
	return emit(ctx, tx, cause, outcomeType(p.Status), p)
}

func outcomeType(status string) string {
	return map[string]string{
		StatusApproved: events.TypePaymentApproved,
		StatusDeclined: events.TypePaymentDeclined,
		StatusFailed:   events.TypePaymentFailed,
	}[status]
}

func emit(ctx context.Context, tx pgx.Tx, cause, typ string, p paymentdb.Payment) error {
	msg, err := message(typ, p)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, msg.CausedBy(cause))
}

func message(typ string, p paymentdb.Payment) (events.Message, error) {
	body := events.PaymentEvent{PaymentID: p.ID, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency}
	if typ == events.TypePaymentDeclined || typ == events.TypePaymentFailed {
		body.Reason = *p.Reason
	}
	return events.New(typ, p.OrderID, body)
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
	var settled []paymentdb.Payment
	var written []events.Message
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		settled, written = nil, nil
		q := paymentdb.New(tx)
		due, err := q.ClaimDuePayments(ctx, paymentdb.ClaimDuePaymentsParams{Now: time.Now().UTC(), RowLimit: decideBatch})
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
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
		msgs := make([]events.Message, len(decided))
		for i, p := range decided {
			if msgs[i], err = message(outcomeType(p.Status), p); err != nil {
				return err
			}
		}
		if err := outbox.Add(ctx, tx, msgs...); err != nil {
			return err
		}
		settled, written = decided, msgs
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("decide due payments: %w", err)
	}
	if s.Dispatch != nil {
		s.Dispatch(written)
	}
	s.record(settled)
	return len(settled), nil
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
// that match status (nil: all).
func (s *Service) List(ctx context.Context, status *string, limit, offset int) ([]Payment, int64, error) {
	q := paymentdb.New(s.pool)
	rows, err := q.ListPayments(ctx, paymentdb.ListPaymentsParams{Status: status, RowLimit: int32(limit), RowOffset: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list payments: %w", err)
	}
	total, err := q.CountPayments(ctx, status)
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
