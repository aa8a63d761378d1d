package order

import (
	"context"
	"encoding/json"
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
	stockTimeout   time.Duration
	sagaDuration   *prometheus.HistogramVec
}

// Timeouts are how long an order waits for each step of its saga before
// it is cancelled.
type Timeouts struct {
	Payment time.Duration // PAYMENT_TIMEOUT
	Stock   time.Duration // STOCK_TIMEOUT
}

// NewService returns the order service, writing through runner. Orders
// still waiting for payment or stock after their timeout are cancelled.
func NewService(runner *uow.Runner, log *slog.Logger, t Timeouts, reg prometheus.Registerer) *Service {
	s := &Service{pool: runner.Pool(), uow: runner, log: log, paymentTimeout: t.Payment, stockTimeout: t.Stock,
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
		uow.On(s.stockReserved),
		uow.On(s.stockRejected),
		// The inventory's outcomes of a paid or compensated order: the
		// order already is where it ends; its timeline shows them.
		uow.Record[events.StockCommitted](),
		uow.Record[events.StockReleased](),
		uow.Record[events.StockReturned](),
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
	params := orderdb.CreateOrderParams{
		ID: o.OrderID, UserID: o.UserID, Currency: o.Currency,
		PaymentMethod: o.PaymentMethod, Status: events.StatusPendingPayment, Now: time.Now().UTC(),
	}
	if cmd.Items == nil {
		params.Total = &o.Total
	} else {
		// With items: the inventory reserves and prices them first.
		items := make([]Item, len(cmd.Items))
		for i, l := range cmd.Items {
			items[i] = Item{SKU: l.SKU, Quantity: l.Quantity}
		}
		b, err := encodeItems(items)
		if err != nil {
			return fmt.Errorf("create order %s: %w", o.OrderID, err)
		}
		params.Items, params.Status = b, events.StatusPendingStock
	}
	n, err := orderdb.New(tx).CreateOrder(ctx, params)
	if err != nil {
		return fmt.Errorf("create order %s: %w", o.OrderID, err)
	}
	if n == 0 {
		// The order exists: a replayed Idempotency-Key. The first command's
		// content stands, and its order.created went out then.
		return nil
	}
	if cmd.Items != nil {
		return tx.Emit(events.OrderItemsPlaced{OrderID: o.OrderID, UserID: o.UserID, Items: cmd.Items,
			Currency: o.Currency, PaymentMethod: o.PaymentMethod}, o.OrderID.String())
	}
	return tx.Emit(events.OrderCreated{OrderPlaced: o}, o.OrderID.String())
}

// stockReserved prices an order waiting for its stock and sends it on to
// payment. An order cancelled meanwhile stays cancelled: the inventory saw
// that cancellation too and releases the reservation itself.
func (s *Service) stockReserved(ctx context.Context, tx *uow.Tx, e *events.StockReserved) error {
	q := orderdb.New(tx)
	o, err := q.LockOrder(ctx, e.OrderID)
	if postgres.IsNotFound(err) {
		return rabbit.Permanent(fmt.Errorf("stock reserved for order %s: %w", e.OrderID, ErrNotFound))
	}
	if err != nil {
		return fmt.Errorf("stock reserved for order %s: %w", e.OrderID, err)
	}
	if o.Status != events.StatusPendingStock {
		return nil
	}
	price := make(map[string]int64, len(e.Items))
	names := make(map[string]string, len(e.Items))
	for _, l := range e.Items {
		price[l.SKU] = l.UnitPrice
		if l.Name != "" {
			names[l.SKU] = l.Name
		}
	}
	items := fromRow(o).Items
	for i := range items {
		p, ok := price[items[i].SKU]
		if !ok {
			return rabbit.Permanent(fmt.Errorf("stock reserved for order %s: no price of %s", e.OrderID, items[i].SKU))
		}
		line := p * items[i].Quantity
		items[i].UnitPrice, items[i].LineTotal = &p, &line
	}
	b, err := encodeItems(items)
	if err != nil {
		return fmt.Errorf("stock reserved for order %s: %w", e.OrderID, err)
	}
	nameBytes, err := json.Marshal(names)
	if err != nil {
		return fmt.Errorf("stock reserved for order %s: %w", e.OrderID, err)
	}
	priced, err := q.PriceOrder(ctx, orderdb.PriceOrderParams{ID: e.OrderID, Total: &e.Total, Items: b, ItemNames: nameBytes})
	if err != nil {
		return fmt.Errorf("stock reserved for order %s: %w", e.OrderID, err)
	}
	return tx.Emit(events.OrderCreated{OrderPlaced: events.OrderPlaced{
		OrderID: priced.ID, UserID: priced.UserID, Total: e.Total, Currency: priced.Currency, PaymentMethod: priced.PaymentMethod,
	}}, e.OrderID.String())
}

// stockRejected cancels an order waiting for stock, with the inventory's
// reason.
func (s *Service) stockRejected(ctx context.Context, tx *uow.Tx, e *events.StockRejected) error {
	q := orderdb.New(tx)
	reason := e.Reason
	o, err := q.TransitionOrder(ctx, orderdb.TransitionOrderParams{
		ID: e.OrderID, FromStatus: events.StatusPendingStock, ToStatus: events.StatusCancelled, CancelReason: &reason,
	})
	if postgres.IsNotFound(err) {
		// No longer waiting for stock (cancelled meanwhile), or not there.
		if _, getErr := q.GetOrder(ctx, e.OrderID); postgres.IsNotFound(getErr) {
			return rabbit.Permanent(fmt.Errorf("stock rejected for order %s: %w", e.OrderID, ErrNotFound))
		} else if getErr != nil {
			return fmt.Errorf("stock rejected for order %s: %w", e.OrderID, getErr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stock rejected for order %s: %w", e.OrderID, err)
	}
	s.settled(tx, o)
	return tx.Emit(events.OrderCancelled{OrderID: o.ID, Reason: reason, PreviousStatus: events.StatusPendingStock, UserID: o.UserID}, o.ID.String())
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
	if o.Status != events.StatusPaid {
		// A cancelled paid order had its outcome already.
		s.settled(tx, cancelled)
	}
	return tx.Emit(events.OrderCancelled{OrderID: id, Reason: reason, PreviousStatus: o.Status, UserID: o.UserID}, id.String())
}

func (s *Service) paymentApproved(ctx context.Context, tx *uow.Tx, e *events.PaymentApproved) error {
	return s.applyPayment(ctx, tx, e, e.PaymentOutcome, events.StatusPaid, "", func(o orderdb.Order) events.Payload {
		return paid(o, e)
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

// paid is the order.paid of order o, paid by payment e: with what its
// invoice needs (contract §6), the approved amount, its currency and the
// order's lines with their names.
func paid(o orderdb.Order, e *events.PaymentApproved) events.OrderPaid {
	p := events.OrderPaid{OrderOutcome: outcome(o, e.PaymentID), Total: e.Amount, Currency: e.Currency}
	var names map[string]string
	if o.ItemNames != nil {
		// Written by stockReserved from a map: a failure is a corrupt row,
		// whose lines are then named by their skus.
		_ = json.Unmarshal(o.ItemNames, &names)
	}
	for _, it := range fromRow(o).Items {
		if it.UnitPrice == nil {
			continue // never for a paid order: its lines were priced
		}
		p.Items = append(p.Items, events.PaidLine{SKU: it.SKU, Name: names[it.SKU], Quantity: it.Quantity, UnitPrice: *it.UnitPrice})
	}
	return p
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
// payment after the payment timeout (cancelReason PAYMENT_TIMEOUT) or for
// stock after the stock timeout (STOCK_TIMEOUT). Rows are claimed with SKIP
// LOCKED, so every instance may sweep.
func (s *Service) RunTimeoutSweep(ctx context.Context) error {
	every := min(max(min(s.paymentTimeout, s.stockTimeout)/4, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, sweep := range []func(context.Context) (int, error){s.SweepTimeouts, s.SweepStockTimeouts} {
			for {
				n, err := sweep(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					s.log.Warn("timeout sweep failed", "error", err)
					break
				}
				if n < sweepBatch {
					break
				}
			}
		}
	}
}

const sweepBatch = 100

// SweepTimeouts cancels one batch of orders overdue for payment and returns
// its size.
func (s *Service) SweepTimeouts(ctx context.Context) (int, error) {
	return s.sweep(ctx, events.StatusPendingPayment, s.paymentTimeout, events.ReasonPaymentTimeout)
}

// SweepStockTimeouts cancels one batch of orders overdue for stock and
// returns its size.
func (s *Service) SweepStockTimeouts(ctx context.Context) (int, error) {
	return s.sweep(ctx, events.StatusPendingStock, s.stockTimeout, events.ReasonStockTimeout)
}

func (s *Service) sweep(ctx context.Context, status string, timeout time.Duration, reason string) (int, error) {
	n := 0
	err := s.uow.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		overdue, err := orderdb.New(tx).ClaimOverdueOrders(ctx, orderdb.ClaimOverdueOrdersParams{
			Status: status, Before: time.Now().Add(-timeout), RowLimit: sweepBatch,
		})
		if err != nil {
			return err
		}
		for _, o := range overdue {
			if err := s.cancel(ctx, tx, o.ID, reason); err != nil {
				return err
			}
			s.log.Info("order timed out", "status", status, "reason", reason, "order_id", o.ID, "correlation_id", o.ID)
		}
		n = len(overdue)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep orders overdue in %s: %w", status, err)
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
