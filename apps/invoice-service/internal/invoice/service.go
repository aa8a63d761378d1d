package invoice

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersaga/ordersaga/db/invoice/invoicedb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// Service runs the invoice side of the saga.
type Service struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	seller Seller
}

// NewService returns the invoice service, whose handlers write through the
// runner they are given (uow.On) and whose documents name seller.
func NewService(runner *uow.Runner, log *slog.Logger, seller Seller) *Service {
	return &Service{pool: runner.Pool(), log: log, seller: seller}
}

// Handlers returns the handlers of the messages the invoice service
// consumes (its subscriptions in saga/saga.conf).
func (s *Service) Handlers() []uow.Handler {
	return []uow.Handler{uow.On(s.orderPaid), uow.On(s.orderCancelled)}
}

// lockNumbering takes the numbering's lock for the rest of the transaction
// and then reads the database's clock: the issuedAt of a document numbered
// now. Every handler takes it before it looks at an order's invoice, so
// that an order's order.paid and order.cancelled, or two deliveries of one
// of them, are decided one after the other, also across instances.
func lockNumbering(ctx context.Context, q *invoicedb.Queries) (time.Time, error) {
	if err := q.LockNumbering(ctx); err != nil {
		return time.Time{}, fmt.Errorf("lock numbering: %w", err)
	}
	now, err := q.Clock(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the clock: %w", err)
	}
	return now.UTC(), nil
}

// next takes the next number of series for a document issued at.
func next(ctx context.Context, q *invoicedb.Queries, series string, at time.Time) (string, error) {
	n, err := q.NextNumber(ctx, invoicedb.NextNumberParams{Series: series, Year: int32(at.Year())})
	if err != nil {
		return "", fmt.Errorf("next %s number: %w", series, err)
	}
	return Number(series, at.Year(), n), nil
}

// orderPaid issues the order's invoice, once; and its credit note too when
// its paid-order cancellation came first.
func (s *Service) orderPaid(ctx context.Context, tx *uow.Tx, e *events.OrderPaid) error {
	if e.Currency == "" {
		// An order.paid of the shape before contract §6's fields: nothing
		// to invoice from, and no retry will add it.
		return rabbit.Permanent(fmt.Errorf("invoice order %s: order.paid without total and currency", e.OrderID))
	}
	q := invoicedb.New(tx)
	now, err := lockNumbering(ctx, q)
	if err != nil {
		return fmt.Errorf("invoice order %s: %w", e.OrderID, err)
	}
	if _, err := q.InvoiceOfOrder(ctx, e.OrderID); err == nil {
		return nil // invoiced already
	} else if !postgres.IsNotFound(err) {
		return fmt.Errorf("invoice order %s: %w", e.OrderID, err)
	}
	inv := Invoice{
		ID: uuid.New(), OrderID: e.OrderID, UserID: e.UserID, PaymentID: e.PaymentID,
		Currency: e.Currency, Lines: linesOf(e), Total: e.Total, Status: Issued, IssuedAt: now,
	}
	if inv.Number, err = next(ctx, q, SeriesInvoice, now); err != nil {
		return fmt.Errorf("invoice order %s: %w", e.OrderID, err)
	}
	if err := s.insert(ctx, q, inv); err != nil {
		return fmt.Errorf("invoice order %s: %w", e.OrderID, err)
	}
	if err := tx.Emit(issued(inv), e.OrderID.String()); err != nil {
		return err
	}
	early, err := q.ForgetCancellation(ctx, e.OrderID)
	if err != nil {
		return fmt.Errorf("invoice order %s: %w", e.OrderID, err)
	}
	if early == 0 {
		return nil
	}
	// Cancelled after it was paid, but that reached us first: credit it now.
	if now, err = lockNumbering(ctx, q); err != nil {
		return fmt.Errorf("credit order %s: %w", e.OrderID, err)
	}
	return s.credit(ctx, tx, q, inv, now)
}

// insert stores inv, issued by the service's seller; its PDF is rendered
// on its first fetch, outside the numbering lock.
func (s *Service) insert(ctx context.Context, q *invoicedb.Queries, inv Invoice) error {
	lines, err := json.Marshal(inv.Lines)
	if err != nil {
		return fmt.Errorf("encode lines: %w", err)
	}
	return q.InsertInvoice(ctx, invoicedb.InsertInvoiceParams{
		ID: inv.ID, Number: inv.Number, OrderID: inv.OrderID, UserID: inv.UserID, PaymentID: inv.PaymentID,
		Currency: inv.Currency, Lines: lines, Total: inv.Total, IssuedAt: inv.IssuedAt,
		SellerName: s.seller.Name, SellerAddress: s.seller.Address,
	})
}

// orderCancelled credits the invoice of a paid order that was cancelled,
// or remembers the cancellation when its order.paid has not come yet. An
// order cancelled before it was paid has no invoice and never gets one.
func (s *Service) orderCancelled(ctx context.Context, tx *uow.Tx, e *events.OrderCancelled) error {
	if e.PreviousStatus != events.StatusPaid {
		return nil
	}
	q := invoicedb.New(tx)
	now, err := lockNumbering(ctx, q)
	if err != nil {
		return fmt.Errorf("credit order %s: %w", e.OrderID, err)
	}
	r, err := q.InvoiceOfOrder(ctx, e.OrderID)
	if postgres.IsNotFound(err) {
		if err := q.RememberCancellation(ctx, e.OrderID); err != nil {
			return fmt.Errorf("credit order %s: %w", e.OrderID, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("credit order %s: %w", e.OrderID, err)
	}
	inv := fromRow(invoicedb.GetInvoiceRow(r))
	if inv.Status == Credited {
		return nil
	}
	return s.credit(ctx, tx, q, inv, now)
}

// credit issues inv's credit note at now, with the numbering locked.
func (s *Service) credit(ctx context.Context, tx *uow.Tx, q *invoicedb.Queries, inv Invoice, now time.Time) error {
	number, err := next(ctx, q, SeriesCreditNote, now)
	if err != nil {
		return fmt.Errorf("credit invoice %s: %w", inv.Number, err)
	}
	if _, err := q.CreditInvoice(ctx, invoicedb.CreditInvoiceParams{
		ID: inv.ID, CreditNumber: &number, CreditIssuedAt: &now,
	}); err != nil {
		return fmt.Errorf("credit invoice %s: %w", inv.Number, err)
	}
	return tx.Emit(events.InvoiceCredited{InvoiceIssued: issued(inv), CreditNoteNumber: number}, inv.OrderID.String())
}

func issued(inv Invoice) events.InvoiceIssued {
	return events.InvoiceIssued{
		InvoiceID: inv.ID, Number: inv.Number, OrderID: inv.OrderID, UserID: inv.UserID, Total: inv.Total, Currency: inv.Currency,
	}
}

// document is what the PDF of inv, or of its credit note, shows.
func document(inv Invoice, title, number string, at time.Time, refers string) Document {
	return Document{
		Title: title, Number: number, IssuedAt: at, Refers: refers, OrderID: inv.OrderID.String(),
		Customer: inv.UserID.String(), PaymentID: inv.PaymentID.String(), Currency: inv.Currency,
		Lines: inv.Lines, Total: inv.Total,
	}
}

// linesOf returns the invoice lines of a paid order: its items as
// reserved, or one line of its total for an order placed with a total.
func linesOf(e *events.OrderPaid) []Line {
	if len(e.Items) == 0 {
		return []Line{{Description: "Order " + e.OrderID.String(), Quantity: 1, UnitPrice: e.Total, Amount: e.Total}}
	}
	lines := make([]Line, len(e.Items))
	for i, it := range e.Items {
		sku := it.SKU
		desc := it.Name
		if desc == "" {
			desc = it.SKU
		}
		lines[i] = Line{Description: desc, SKU: &sku, Quantity: it.Quantity, UnitPrice: it.UnitPrice, Amount: it.Quantity * it.UnitPrice}
	}
	return lines
}

// Timeline returns what the invoice service received and emitted for
// order id.
func (s *Service) Timeline(ctx context.Context, id uuid.UUID) ([]timeline.Entry, error) {
	return timeline.Read(ctx, s.pool, ServiceName, id.String())
}
