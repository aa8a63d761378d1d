package order

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/order/orderdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// ServiceName is how the order service names itself in timelines.
const ServiceName = "order-service"

// Service runs the order side of the saga.
type Service struct {
	pool           *pgxpool.Pool
	uow            *uow.Runner
	log            *slog.Logger
	paymentTimeout time.Duration
	sagaDuration   *prometheus.HistogramVec
}

// NewService returns the order service, writing through runner. Orders
// still waiting for payment after paymentTimeout are cancelled.
func NewService(runner *uow.Runner, log *slog.Logger, paymentTimeout time.Duration, reg prometheus.Registerer) *Service {
	s := &Service{pool: runner.Pool(), uow: runner, log: log, paymentTimeout: paymentTimeout,
		sagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersaga_saga_duration_seconds",
			Help:    "Time from an order's creation to its saga's outcome, by outcome (PAID, CANCELLED, FAILED).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"outcome"}),
	}
	reg.MustRegister(s.sagaDuration)
	return s
}

// Handlers returns the handlers of the messages the order service consumes
// (its consumes lines in saga/saga.conf).
func (s *Service) Handlers() []uow.Handler {
	return []uow.Handler{
		uow.On(s.create),
		uow.On(s.cancelRequested),
		uow.On(s.paymentApproved),
		uow.On(s.paymentDeclined),
		uow.On(s.paymentFailed),
		// payment.refunded and payment.cancelled close the payment side;
		// the order already is where it ends. The inbox keeps them for the
		// timeline.
		uow.Record[events.PaymentRefunded](),
		uow.Record[events.PaymentCancelled](),
	}
}

// settled records, once tx committed, the outcome of o's saga.
func (s *Service) settled(tx *uow.Tx, o orderdb.Order) {
	tx.AfterCommit(func() {
		s.sagaDuration.WithLabelValues(o.Status).Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
	})
}

func (s *Service) create(ctx context.Context, tx *uow.Tx, cmd *events.OrderCreateRequested) error {
	o := cmd.OrderPlaced
	n, err := orderdb.New(tx).CreateOrder(ctx, orderdb.CreateOrderParams{
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
	return tx.Emit(events.OrderCreated{OrderPlaced: o}, o.OrderID.String())
}

func (s *Service) cancelRequested(ctx context.Context, tx *uow.Tx, cmd *events.OrderCancelRequested) error {
	return s.cancel(ctx, tx, cmd.OrderID, cmd.Reason)
}

// cancel cancels an order that is waiting for payment or paid; an order
// that is already cancelled or failed stays as it is.
func (s *Service) cancel(ctx context.Context, tx *uow.Tx, id uuid.UUID, reason string) error {
	q := orderdb.New(tx)
	o, err := q.LockOrder(ctx, id)
	if postgres.IsNotFound(err) {
		return rabbit.Permanent(fmt.Errorf("cancel order %s: %w", id, ErrNotFound))
	}
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if !CanTransition(o.Status, events.StatusCancelled) {
		return nil
	}
	cancelled, err := q.TransitionOrder(ctx, orderdb.TransitionOrderParams{
		ID: id, FromStatus: o.Status, ToStatus: events.StatusCancelled, CancelReason: &reason,
	})
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if o.Status == events.StatusPendingPayment {
		// A cancelled paid order had its outcome already.
		s.settled(tx, cancelled)
	}
	return tx.Emit(events.OrderCancelled{OrderID: id, Reason: reason, PreviousStatus: o.Status, UserID: o.UserID}, id.String())
}

func (s *Service) paymentApproved(ctx context.Context, tx *uow.Tx, e *events.PaymentApproved) error {
	return s.applyPayment(ctx, tx, e, e.PaymentOutcome, events.StatusPaid, "", func(o orderdb.Order) events.Payload {
		return events.OrderPaid{OrderOutcome: outcome(o, e.PaymentID)}
	})
}

func (s *Service) paymentDeclined(ctx context.Context, tx *uow.Tx, e *events.PaymentDeclined) error {
	reason := events.ReasonPaymentDeclined
	return s.applyPayment(ctx, tx, e, e.PaymentOutcome, events.StatusCancelled, reason, func(o orderdb.Order) events.Payload {
		return events.OrderCancelled{OrderID: o.ID, Reason: reason, PreviousStatus: events.StatusPendingPayment, UserID: o.UserID}
	})
}

func (s *Service) paymentFailed(ctx context.Context, tx *uow.Tx, e *events.PaymentFailed) error {
	return s.applyPayment(ctx, tx, e, e.PaymentOutcome, events.StatusFailed, "", func(o orderdb.Order) events.Payload {
		return events.OrderFailed{OrderOutcome: outcome(o, e.PaymentID)}
	})
}

func outcome(o orderdb.Order, paymentID uuid.UUID) events.OrderOutcome {
	return events.OrderOutcome{OrderID: o.ID, PaymentID: paymentID, UserID: o.UserID}
}

// applyPayment moves a waiting order to status to, the outcome of its
// payment, and emits what emit makes of the order. An order that left
// PENDING_PAYMENT meanwhile (cancelled by its user or by the timeout) stays
// as it is: the payment service saw that cancellation too and cancels or
// refunds the payment itself.
func (s *Service) applyPayment(ctx context.Context, tx *uow.Tx, m events.Payload, e events.PaymentOutcome,
	to, reason string, emit func(orderdb.Order) events.Payload) error {
	q := orderdb.New(tx)
	params := orderdb.TransitionOrderParams{ID: e.OrderID, FromStatus: events.StatusPendingPayment, ToStatus: to, PaymentID: &e.PaymentID}
	if reason != "" {
		params.CancelReason = &reason
	}
	o, err := q.TransitionOrder(ctx, params)
	if postgres.IsNotFound(err) {
		// Not waiting for payment, or not there at all.
		if _, getErr := q.GetOrder(ctx, e.OrderID); postgres.IsNotFound(getErr) {
			return rabbit.Permanent(fmt.Errorf("%s for order %s: %w", m.MessageType(), e.OrderID, ErrNotFound))
		} else if getErr != nil {
			return fmt.Errorf("%s for order %s: %w", m.MessageType(), e.OrderID, getErr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s for order %s: %w", m.MessageType(), e.OrderID, err)
	}
	s.settled(tx, o)
	return tx.Emit(emit(o), e.OrderID.String())
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
	n := 0
	err := s.uow.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		overdue, err := orderdb.New(tx).ClaimOverdueOrders(ctx, orderdb.ClaimOverdueOrdersParams{
			Before: time.Now().Add(-s.paymentTimeout), RowLimit: sweepBatch,
		})
		if err != nil {
			return err
		}
		for _, o := range overdue {
			if err := s.cancel(ctx, tx, o.ID, events.ReasonPaymentTimeout); err != nil {
				return err
			}
			s.log.Info("order timed out waiting for payment", "order_id", o.ID, "correlation_id", o.ID)
		}
		n = len(overdue)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep overdue orders: %w", err)
	}
	return n, nil
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
