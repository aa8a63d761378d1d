package order

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/order/orderdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/inbox"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/timeline"
)

// ServiceName is how the order service names itself in timelines.
const ServiceName = "order-service"

// Service runs the order side of the saga.
type Service struct {
	pool           *pgxpool.Pool
	inbox          *inbox.Inbox
	log            *slog.Logger
	paymentTimeout time.Duration
	sagaDuration   *prometheus.HistogramVec
	// Dispatch, when set, receives the events the timeout sweep committed
	// to the outbox, so that the relay publishes them at once.
	Dispatch func([]events.Message)
}

// NewService returns the order service over pool. Orders still waiting for
// payment after paymentTimeout are cancelled.
func NewService(pool *pgxpool.Pool, in *inbox.Inbox, log *slog.Logger, paymentTimeout time.Duration, reg prometheus.Registerer) *Service {
	s := &Service{pool: pool, inbox: in, log: log, paymentTimeout: paymentTimeout,
		sagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersaga_saga_duration_seconds",
			Help:    "Time from an order's creation to its saga's outcome, by outcome (PAID, CANCELLED, FAILED).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"outcome"}),
	}
	reg.MustRegister(s.sagaDuration)
	return s
}

// settled records the outcomes of sagas whose transactions committed.
func (s *Service) settled(orders []orderdb.Order) {
	for _, o := range orders {
		s.sagaDuration.WithLabelValues(o.Status).Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
	}
}

// HandleCommands handles deliveries of the order-service.commands queue,
// in one transaction when it can (inbox.Batch).
func (s *Service) HandleCommands(ctx context.Context, ds []rabbit.Delivery) []error {
	return s.inbox.Batch(ctx, events.QueueOrderCommands, ds, s.command)
}

// HandleCommand handles one delivery of the order-service.commands queue.
func (s *Service) HandleCommand(ctx context.Context, d rabbit.Delivery) error {
	return s.HandleCommands(ctx, []rabbit.Delivery{d})[0]
}

func (s *Service) command(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) {
	p, err := events.Decode(d.Type, d.Body)
	if err != nil {
		return nil, err
	}
	switch cmd := p.(type) {
	case *events.OrderCreateRequested:
		return nil, s.create(ctx, tx, d, cmd.OrderPlaced)
	case *events.OrderCancelRequested:
		var done []orderdb.Order
		if err := s.cancel(ctx, tx, d.MessageID, cmd.OrderID, cmd.Reason, &done); err != nil {
			return nil, err
		}
		return func() { s.settled(done) }, nil
	default:
		return nil, rabbit.Permanent(fmt.Errorf("%s is not a command of %s", d.Type, events.QueueOrderCommands))
	}
}

// HandlePaymentEvents handles deliveries of the
// order-service.payment-events queue, in one transaction when it can.
func (s *Service) HandlePaymentEvents(ctx context.Context, ds []rabbit.Delivery) []error {
	return s.inbox.Batch(ctx, events.QueueOrderPaymentEvents, ds, s.paymentEvent)
}

// HandlePaymentEvent handles one delivery of the
// order-service.payment-events queue.
func (s *Service) HandlePaymentEvent(ctx context.Context, d rabbit.Delivery) error {
	return s.HandlePaymentEvents(ctx, []rabbit.Delivery{d})[0]
}

func (s *Service) paymentEvent(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (func(), error) {
	p, err := events.Decode(d.Type, d.Body)
	if err != nil {
		return nil, err
	}
	e, ok := p.(*events.PaymentEvent)
	if !ok {
		return nil, rabbit.Permanent(fmt.Errorf("%s is not a payment event", d.Type))
	}
	var done []orderdb.Order
	if err := s.applyPayment(ctx, tx, d, e, &done); err != nil {
		return nil, err
	}
	return func() { s.settled(done) }, nil
}

func (s *Service) create(ctx context.Context, tx pgx.Tx, d rabbit.Delivery, o events.OrderPlaced) error {
	q := orderdb.New(tx)
	n, err := q.CreateOrder(ctx, orderdb.CreateOrderParams{
		ID: o.OrderID, UserID: o.UserID, Total: o.Total, Currency: o.Currency,
		PaymentMethod: o.PaymentMethod, Now: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("create order %s: %w", o.OrderID, err)
	}
	if n == 0 {
		// The order exists: a replayed Idempotency-Key. The first command's
		// content stands, and its order.created went out then.
		return nil
	}
	return emit(ctx, tx, d.MessageID, events.TypeOrderCreated, o.OrderID, events.OrderCreated{OrderPlaced: o})
}

// cancel cancels an order that is waiting for payment or paid; an order
// that is already cancelled or failed stays as it is.
func (s *Service) cancel(ctx context.Context, tx pgx.Tx, cause string, id uuid.UUID, reason string, done *[]orderdb.Order) error {
	q := orderdb.New(tx)
	o, err := q.LockOrder(ctx, id)
	if postgres.IsNotFound(err) {
		return rabbit.Permanent(fmt.Errorf("cancel order %s: %w", id, ErrNotFound))
	}
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if !CanTransition(o.Status, StatusCancelled) {
		return nil
	}
	cancelled, err := q.TransitionOrder(ctx, orderdb.TransitionOrderParams{
		ID: id, FromStatus: o.Status, ToStatus: StatusCancelled, CancelReason: &reason,
	})
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if o.Status == StatusPendingPayment {
		// A cancelled paid order had its outcome already.
		*done = append(*done, cancelled)
	}
	return emit(ctx, tx, cause, events.TypeOrderCancelled, id, events.OrderCancelled{
		OrderID: id, Reason: reason, PreviousStatus: o.Status,
	})
}

// applyPayment moves a waiting order to the outcome of its payment. An
// order that left PENDING_PAYMENT meanwhile (cancelled by its user or by the
// timeout) stays as it is: the payment service saw that cancellation too and
// cancels or refunds the payment itself.
func (s *Service) applyPayment(ctx context.Context, tx pgx.Tx, d rabbit.Delivery, e *events.PaymentEvent, done *[]orderdb.Order) error {
	var (
		to, reason string
		emitType   string
		payload    any
	)
	switch d.Type {
	case events.TypePaymentApproved:
		to, emitType = StatusPaid, events.TypeOrderPaid
		payload = events.OrderPaid{OrderID: e.OrderID, PaymentID: e.PaymentID}
	case events.TypePaymentDeclined:
		to, reason, emitType = StatusCancelled, events.ReasonPaymentDeclined, events.TypeOrderCancelled
		payload = events.OrderCancelled{OrderID: e.OrderID, Reason: reason, PreviousStatus: StatusPendingPayment}
	case events.TypePaymentFailed:
		to, emitType = StatusFailed, events.TypeOrderFailed
		payload = events.OrderPaid{OrderID: e.OrderID, PaymentID: e.PaymentID}
	default:
		// payment.refunded and payment.cancelled close the payment side;
		// the order already is where it ends. The inbox keeps them for the
		// timeline.
		return nil
	}
	q := orderdb.New(tx)
	params := orderdb.TransitionOrderParams{ID: e.OrderID, FromStatus: StatusPendingPayment, ToStatus: to, PaymentID: &e.PaymentID}
	if reason != "" {
		params.CancelReason = &reason
	}
	o, err := q.TransitionOrder(ctx, params)
	if postgres.IsNotFound(err) {
		// Not waiting for payment, or not there at all.
		if _, getErr := q.GetOrder(ctx, e.OrderID); postgres.IsNotFound(getErr) {
			return rabbit.Permanent(fmt.Errorf("%s for order %s: %w", d.Type, e.OrderID, ErrNotFound))
		} else if getErr != nil {
			return fmt.Errorf("%s for order %s: %w", d.Type, e.OrderID, getErr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s for order %s: %w", d.Type, e.OrderID, err)
	}
	*done = append(*done, o)
	return emit(ctx, tx, d.MessageID, emitType, e.OrderID, payload)
}

func emit(ctx context.Context, tx pgx.Tx, cause, typ string, orderID uuid.UUID, payload any) error {
	msg, err := events.New(typ, orderID, payload)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, msg.CausedBy(cause))
}

// RunTimeoutSweep cancels, until ctx ends, every order still waiting for
// payment after the payment timeout (cancelReason PAYMENT_TIMEOUT). Rows are
// claimed with SKIP LOCKED, so every instance may sweep.
func (s *Service) RunTimeoutSweep(ctx context.Context) error {
	every := min(max(s.paymentTimeout/4, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			n, err := s.SweepTimeouts(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("payment-timeout sweep failed", "error", err)
				break
			}
			if n < sweepBatch {
				break
			}
		}
	}
}

const sweepBatch = 100

// SweepTimeouts cancels one batch of overdue orders and returns its size.
func (s *Service) SweepTimeouts(ctx context.Context) (int, error) {
	var done []orderdb.Order
	var deferred *outbox.Deferred
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		done = nil
		deferred = outbox.Defer(tx)
		q := orderdb.New(tx)
		overdue, err := q.ClaimOverdueOrders(ctx, orderdb.ClaimOverdueOrdersParams{
			Before: time.Now().Add(-s.paymentTimeout), RowLimit: sweepBatch,
		})
		if err != nil {
			return err
		}
		for _, o := range overdue {
			if err := s.cancel(ctx, deferred, "", o.ID, events.ReasonPaymentTimeout, &done); err != nil {
				return err
			}
			s.log.Info("order timed out waiting for payment", "order_id", o.ID, "correlation_id", o.ID)
		}
		return deferred.Flush(ctx)
	})
	if err != nil {
		return 0, fmt.Errorf("sweep overdue orders: %w", err)
	}
	if s.Dispatch != nil {
		s.Dispatch(deferred.Written())
	}
	s.settled(done)
	return len(done), nil
}

// Get returns one order.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Order, error) {
	r, err := orderdb.New(s.pool).GetOrder(ctx, id)
	if postgres.IsNotFound(err) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	return fromRow(r), nil
}

// Filter selects orders in a list; nil fields select all.
type Filter struct {
	Status *string
	UserID *uuid.UUID
}

// List returns one page of orders, newest first, and the count of all that
// match.
func (s *Service) List(ctx context.Context, f Filter, limit, offset int) ([]Order, int64, error) {
	q := orderdb.New(s.pool)
	rows, err := q.ListOrders(ctx, orderdb.ListOrdersParams{Status: f.Status, UserID: f.UserID,
		RowLimit: int32(limit), RowOffset: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list orders: %w", err)
	}
	total, err := q.CountOrders(ctx, orderdb.CountOrdersParams{Status: f.Status, UserID: f.UserID})
	if err != nil {
		return nil, 0, fmt.Errorf("count orders: %w", err)
	}
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, total, nil
}

// Timeline returns what the order service received and emitted for order id.
func (s *Service) Timeline(ctx context.Context, id uuid.UUID) ([]timeline.Entry, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return timeline.Read(ctx, s.pool, ServiceName, id.String())
}
