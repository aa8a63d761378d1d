package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/inventory/inventorydb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// Service runs the inventory side of the saga.
type Service struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	metrics metrics
}

// metrics count what the handlers committed (Instrument exposes them).
type metrics struct {
	reservations, units, adjustments *prometheus.CounterVec
}

// NewService returns the inventory service, whose handlers write through
// the runner they are given (uow.On).
func NewService(runner *uow.Runner, log *slog.Logger) *Service {
	return &Service{pool: runner.Pool(), log: log, metrics: metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_inventory_reservations_total",
			Help: "Orders the inventory decided on, by outcome: RESERVED, or the reason of the rejection (OUT_OF_STOCK, UNKNOWN_PRODUCT, CURRENCY_MISMATCH).",
		}, []string{"outcome"}),
		units: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_inventory_units_total",
			Help: "Units moved, by movement: reserved, committed (sold), released, returned (to stock, of a paid order cancelled).",
		}, []string{"movement"}),
		adjustments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_inventory_adjustments_total",
			Help: "Stock adjustments recorded, by status (APPLIED, REFUSED).",
		}, []string{"status"}),
	}}
}

// Instrument registers the service's metrics in reg.
func (s *Service) Instrument(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.metrics.reservations, s.metrics.units, s.metrics.adjustments} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("inventory metrics: %w", err)
		}
	}
	return nil
}

// count adds n to counter's label once tx committed.
func count(tx *uow.Tx, counter *prometheus.CounterVec, label string, n int64) {
	tx.AfterCommit(func() { counter.WithLabelValues(label).Add(float64(n)) })
}

// Handlers returns the handlers of the messages the inventory service
// consumes (its subscriptions in saga/topology.go).
func (s *Service) Handlers() []uow.Handler {
	return []uow.Handler{
		uow.On(s.createProduct),
		uow.On(s.adjustStock),
		uow.On(s.orderPlaced),
		uow.On(s.orderPaid),
		uow.On(s.orderCancelled),
		uow.On(s.orderFailed),
	}
}

func (s *Service) createProduct(ctx context.Context, tx *uow.Tx, cmd *events.ProductCreateRequested) error {
	n, err := inventorydb.New(tx).CreateProduct(ctx, inventorydb.CreateProductParams{
		Sku: cmd.SKU, Name: cmd.Name, Price: cmd.Price, Currency: cmd.Currency, OnHand: cmd.OnHand, Now: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("create product %s: %w", cmd.SKU, err)
	}
	if n == 0 {
		// A second create of the sku changes nothing: the first stands
		// (contract §5); said, since its data is dropped.
		s.log.Info("product exists already: the create changes nothing", "sku", cmd.SKU, "message_id", tx.Cause())
	}
	return nil
}

// adjustStock applies an adjustment, or records it REFUSED when it would
// take the stock on hand below what is reserved. An adjustment of a sku
// not known yet fails transiently: it may have overtaken its product's
// create, and is dead-lettered once its attempts are spent.
func (s *Service) adjustStock(ctx context.Context, tx *uow.Tx, cmd *events.StockAdjustRequested) error {
	q := inventorydb.New(tx)
	p, err := q.LockProduct(ctx, cmd.SKU)
	if postgres.IsNotFound(err) {
		return fmt.Errorf("adjust stock %s of %s: %w", cmd.AdjustmentID, cmd.SKU, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("adjust stock %s of %s: %w", cmd.AdjustmentID, cmd.SKU, err)
	}
	params := inventorydb.InsertAdjustmentParams{ID: cmd.AdjustmentID, Sku: cmd.SKU, Delta: cmd.Delta, Status: Applied}
	if p.OnHand+cmd.Delta < p.Reserved {
		reason := ReasonBelowReserved
		params.Status, params.Reason = Refused, &reason
	}
	n, err := q.InsertAdjustment(ctx, params)
	if err != nil {
		return fmt.Errorf("adjust stock %s of %s: %w", cmd.AdjustmentID, cmd.SKU, err)
	}
	if n == 0 {
		return nil // recorded before (a replay under another message id)
	}
	count(tx, s.metrics.adjustments, params.Status, 1)
	if params.Status == Refused {
		return nil
	}
	move := inventorydb.MoveStocksParams{Skus: []string{cmd.SKU}, OnHandDeltas: []int64{cmd.Delta}, ReservedDeltas: []int64{0}}
	if err := moveStocks(ctx, tx, move); err != nil {
		return fmt.Errorf("adjust stock %s of %s: %w", cmd.AdjustmentID, cmd.SKU, err)
	}
	return nil
}

// orderPlaced reserves every line of an order or none, in this one
// transaction, at the products' prices now. It decides on the products
// the transaction locked and kept (lockProducts), and its statements whose
// only result is their error go with the next one (uow.Tx.Deferred): one
// round trip while the batch holds its products' locks, not five.
func (s *Service) orderPlaced(ctx context.Context, tx *uow.Tx, e *events.OrderItemsPlaced) error {
	q := inventorydb.New(tx.Deferred())
	if err := q.LockOrderStock(ctx, e.OrderID.String()); err != nil {
		return fmt.Errorf("reserve order %s: %w", e.OrderID, err)
	}
	state, err := q.OrderStockState(ctx, e.OrderID)
	if err != nil {
		return fmt.Errorf("reserve order %s: %w", e.OrderID, err)
	}
	if state.Cancelled || state.Reserved {
		// Cancelled before it reached the inventory: never reserved, and
		// the order is no longer waiting for stock. Or reserved already.
		return nil
	}
	skus := make([]string, len(e.Items))
	for i, l := range e.Items {
		skus[i] = l.SKU
	}
	products, err := lockProducts(ctx, tx, skus)
	if err != nil {
		return fmt.Errorf("reserve order %s: %w", e.OrderID, err)
	}
	stock := make(map[string]Stock, len(products))
	for _, p := range products {
		stock[p.Sku] = Stock{Name: p.Name, Price: p.Price, Currency: p.Currency, Available: p.OnHand - p.Reserved}
	}
	d := Reserve(e.Items, e.Currency, stock)
	if d.Reason != "" {
		count(tx, s.metrics.reservations, d.Reason, 1)
		return tx.Emit(events.StockRejected{OrderID: e.OrderID, Reason: d.Reason, Items: d.Rejected}, e.OrderID.String())
	}
	// Two statements for all the lines (their products are locked).
	move := inventorydb.MoveStocksParams{OnHandDeltas: make([]int64, len(d.Reserved))}
	held := inventorydb.InsertReservationsParams{OrderID: e.OrderID}
	for _, l := range d.Reserved {
		move.Skus = append(move.Skus, l.SKU)
		move.ReservedDeltas = append(move.ReservedDeltas, l.Quantity)
		held.Skus, held.Quantities, held.UnitPrices = append(held.Skus, l.SKU), append(held.Quantities, l.Quantity), append(held.UnitPrices, l.UnitPrice)
	}
	if err := moveStocks(ctx, tx, move); err != nil {
		return fmt.Errorf("reserve order %s: %w", e.OrderID, err)
	}
	if err := q.InsertReservations(ctx, held); err != nil {
		return fmt.Errorf("reserve order %s: %w", e.OrderID, err)
	}
	count(tx, s.metrics.reservations, "RESERVED", 1)
	count(tx, s.metrics.units, "reserved", units(d.Reserved))
	return tx.Emit(events.StockReserved{OrderID: e.OrderID, Items: d.Reserved, Total: d.Total, Currency: e.Currency}, e.OrderID.String())
}

// orderPaid commits a held reservation: its units are sold. An order
// without one (placed with a total) has no inventory step.
func (s *Service) orderPaid(ctx context.Context, tx *uow.Tx, e *events.OrderPaid) error {
	lines, err := s.lockedLines(ctx, tx, e.OrderID)
	if err != nil {
		return fmt.Errorf("commit order %s: %w", e.OrderID, err)
	}
	return s.settle(ctx, tx, e.OrderID, lines, Held, Committed, -1, -1, func(m events.StockMovement) events.Payload {
		return events.StockCommitted{StockMovement: m}
	})
}

// lockedLines serialises the handlers of order id's events for the rest
// of the transaction (LockOrderStock) and returns its reservation lines.
func (s *Service) lockedLines(ctx context.Context, tx *uow.Tx, id uuid.UUID) ([]inventorydb.Reservation, error) {
	q := inventorydb.New(tx.Deferred())
	if err := q.LockOrderStock(ctx, id.String()); err != nil {
		return nil, err
	}
	return q.OrderReservations(ctx, id)
}

// orderCancelled releases a held reservation or returns the units of a
// paid order to stock; a cancellation that came first is remembered, so
// that the order is never reserved.
func (s *Service) orderCancelled(ctx context.Context, tx *uow.Tx, e *events.OrderCancelled) error {
	lines, err := s.lockedLines(ctx, tx, e.OrderID)
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", e.OrderID, err)
	}
	if len(lines) == 0 {
		// Only an order cancelled while waiting for its stock can still
		// see its order.placed arrive; an order placed with a total never
		// does, and is not worth a row.
		if e.PreviousStatus == events.StatusPendingStock {
			if err := inventorydb.New(tx.Deferred()).RememberCancellation(ctx, e.OrderID); err != nil {
				return fmt.Errorf("cancel order %s: %w", e.OrderID, err)
			}
		}
		return nil
	}
	switch lines[0].Status {
	case Held:
		return s.release(ctx, tx, e.OrderID, lines)
	case Committed:
		return s.settle(ctx, tx, e.OrderID, lines, Committed, Returned, 1, 0, func(m events.StockMovement) events.Payload {
			return events.StockReturned{StockMovement: m}
		})
	}
	return nil // released or returned already
}

// orderFailed releases a held reservation.
func (s *Service) orderFailed(ctx context.Context, tx *uow.Tx, e *events.OrderFailed) error {
	lines, err := s.lockedLines(ctx, tx, e.OrderID)
	if err != nil {
		return fmt.Errorf("release order %s: %w", e.OrderID, err)
	}
	return s.release(ctx, tx, e.OrderID, lines)
}

func (s *Service) release(ctx context.Context, tx *uow.Tx, id uuid.UUID, lines []inventorydb.Reservation) error {
	return s.settle(ctx, tx, id, lines, Held, Released, 0, -1, func(m events.StockMovement) events.Payload {
		return events.StockReleased{StockMovement: m}
	})
}

// settle moves the lines of order id (read under its lock, lockedLines)
// that are in status from to status to, adding onHand and reserved times
// each line's quantity to its product, and emits what emit makes of the
// units moved. Nothing in status from: nothing to do. Its statements go
// with the next one (uow.Tx.Deferred): they return nothing but an error.
func (s *Service) settle(ctx context.Context, tx *uow.Tx, id uuid.UUID, lines []inventorydb.Reservation, from, to string,
	onHand, reserved int64, emit func(events.StockMovement) events.Payload) error {
	q := inventorydb.New(tx.Deferred())
	m := events.StockMovement{OrderID: id}
	var move inventorydb.MoveStocksParams
	for _, l := range lines { // in sku order, as OrderReservations returns them
		if l.Status == from {
			m.Items = append(m.Items, events.Line{SKU: l.Sku, Quantity: l.Quantity})
			move.Skus = append(move.Skus, l.Sku)
			move.OnHandDeltas = append(move.OnHandDeltas, onHand*l.Quantity)
			move.ReservedDeltas = append(move.ReservedDeltas, reserved*l.Quantity)
		}
	}
	if len(m.Items) == 0 {
		return nil
	}
	// Lock the products in sku order, as a reservation does (a consumer's
	// LockStock has, unless the lines were reserved after it looked; kept
	// ones are locked for certain).
	if len(lockedIn(tx).missing(move.Skus)) > 0 {
		if err := q.LockSkus(ctx, move.Skus); err != nil {
			return fmt.Errorf("%s order %s: %w", to, id, err)
		}
	}
	if err := moveStocks(ctx, tx, move); err != nil {
		return fmt.Errorf("%s order %s: %w", to, id, err)
	}
	if err := q.SetReservationStatus(ctx, inventorydb.SetReservationStatusParams{OrderID: id, FromStatus: from, ToStatus: to}); err != nil {
		return fmt.Errorf("%s order %s: %w", to, id, err)
	}
	var n int64
	for _, l := range m.Items {
		n += l.Quantity
	}
	count(tx, s.metrics.units, strings.ToLower(to), n)
	return tx.Emit(emit(m), id.String())
}

// Get returns one product.
func (s *Service) Get(ctx context.Context, sku string) (Product, error) {
	r, err := inventorydb.New(s.pool).GetProduct(ctx, sku)
	if postgres.IsNotFound(err) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("get product %s: %w", sku, err)
	}
	return productFromRow(r), nil
}

// List returns one page of products by sku, and the count of all.
func (s *Service) List(ctx context.Context, limit, offset int) ([]Product, int64, error) {
	q := inventorydb.New(s.pool)
	rows, err := q.ListProducts(ctx, inventorydb.ListProductsParams{RowLimit: int32(limit), RowOffset: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list products: %w", err)
	}
	total, err := q.CountProducts(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count products: %w", err)
	}
	out := make([]Product, len(rows))
	for i, r := range rows {
		out[i] = productFromRow(r)
	}
	return out, total, nil
}

// Adjustments returns one page of a product's adjustments, newest first,
// and the count of all.
func (s *Service) Adjustments(ctx context.Context, sku string, limit, offset int) ([]Adjustment, int64, error) {
	if _, err := s.Get(ctx, sku); err != nil {
		return nil, 0, err
	}
	q := inventorydb.New(s.pool)
	rows, err := q.ListAdjustments(ctx, inventorydb.ListAdjustmentsParams{Sku: sku, RowLimit: int32(limit), RowOffset: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list adjustments of %s: %w", sku, err)
	}
	total, err := q.CountAdjustments(ctx, sku)
	if err != nil {
		return nil, 0, fmt.Errorf("count adjustments of %s: %w", sku, err)
	}
	out := make([]Adjustment, len(rows))
	for i, r := range rows {
		out[i] = adjustmentFromRow(r)
	}
	return out, total, nil
}

// Timeline returns what the inventory service received and emitted for
// order id (nothing for an order placed with a total).
func (s *Service) Timeline(ctx context.Context, id uuid.UUID) ([]timeline.Entry, error) {
	return timeline.Read(ctx, s.pool, ServiceName, id.String())
}

// LockStock locks, in sku order, every product that the messages ps of one
// consumer transaction will move (uow.Lock): the lines of the orders
// placed, the products adjusted, and what the reservations of the orders
// paid, cancelled or failed hold. A transaction of several messages that
// each locked its own products would lock in opposite orders across
// messages to another's, and deadlock. A reservation committed after this
// read (its order.placed handled concurrently) is locked by its handler
// later, out of order: rare, and a deadlock then is only retried.
func (s *Service) LockStock(ctx context.Context, tx *uow.Tx, ps []events.Payload) error {
	var skus []string
	var orders []uuid.UUID
	reads := false // whether a reservation will read the products
	for _, p := range ps {
		switch m := p.(type) {
		case *events.OrderItemsPlaced:
			reads = true
			for _, l := range m.Items {
				skus = append(skus, l.SKU)
			}
		case *events.StockAdjustRequested:
			skus = append(skus, m.SKU)
		case *events.OrderPaid:
			orders = append(orders, m.OrderID)
		case *events.OrderCancelled:
			orders = append(orders, m.OrderID)
		case *events.OrderFailed:
			orders = append(orders, m.OrderID)
		}
	}
	q := inventorydb.New(tx.Deferred())
	if len(orders) > 0 {
		held, err := q.MovableSkus(ctx, orders)
		if err != nil {
			return fmt.Errorf("lock stock: %w", err)
		}
		skus = append(skus, held...)
	}
	if len(skus) == 0 {
		return nil
	}
	// Even one message's: the handlers lock their order (LockOrderStock)
	// after, so products before orders, in every transaction.
	slices.Sort(skus)
	skus = slices.Compact(skus)
	if !reads {
		if err := q.LockSkus(ctx, skus); err != nil {
			return fmt.Errorf("lock stock: %w", err)
		}
		return nil
	}
	// The reservations read what they lock: kept for them (lockProducts).
	if _, err := lockProducts(ctx, tx, skus); err != nil {
		return fmt.Errorf("lock stock: %w", err)
	}
	return nil
}

// lockedKey keys a transaction's locked products (uow.Tx.Value).
type lockedKey struct{}

// lockedProducts are the products a transaction locked and read, as it
// last wrote them: no other transaction can change them until it ends, so
// its reservations decide on them without reading them again.
type lockedProducts map[string]inventorydb.Product

func lockedIn(tx *uow.Tx) lockedProducts {
	if m, ok := tx.Value(lockedKey{}).(lockedProducts); ok {
		return m
	}
	m := lockedProducts{}
	tx.SetValue(lockedKey{}, m)
	return m
}

// lockProducts returns the products of skus (unknown skus have none), in
// sku order, locked: those the transaction locked and read already from
// memory, the others locked and read in one statement.
func lockProducts(ctx context.Context, tx *uow.Tx, skus []string) ([]inventorydb.Product, error) {
	m := lockedIn(tx)
	if missing := m.missing(skus); len(missing) > 0 {
		rows, err := inventorydb.New(tx.Deferred()).LockProducts(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, p := range rows {
			m[p.Sku] = p
		}
	}
	sorted := slices.Sorted(slices.Values(skus))
	out := make([]inventorydb.Product, 0, len(sorted))
	for _, sku := range slices.Compact(sorted) {
		if p, ok := m[sku]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// missing returns the skus the transaction has not locked and kept.
func (m lockedProducts) missing(skus []string) []string {
	var out []string
	for _, sku := range skus {
		if _, ok := m[sku]; !ok {
			out = append(out, sku)
		}
	}
	return out
}

// moveStocks moves the stock of locked products (MoveStocks, sent with the
// next statement), and what the transaction keeps of those it read.
func moveStocks(ctx context.Context, tx *uow.Tx, move inventorydb.MoveStocksParams) error {
	if err := inventorydb.New(tx.Deferred()).MoveStocks(ctx, move); err != nil {
		return err
	}
	m := lockedIn(tx)
	for i, sku := range move.Skus {
		if p, ok := m[sku]; ok {
			p.OnHand += move.OnHandDeltas[i]
			p.Reserved += move.ReservedDeltas[i]
			m[sku] = p
		}
	}
	return nil
}

// units is the count of units of lines.
func units(lines []events.PricedLine) int64 {
	var n int64
	for _, l := range lines {
		n += l.Quantity
	}
	return n
}
