package invoice

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db/invoice/invoicedb"
	"github.com/ordersaga/ordersaga/libs/postgres"
)

// Statuses is every status of an invoice, for the list's filter.
var Statuses = []string{Issued, Credited}

// Filter narrows a list of invoices; nil fields do not filter.
type Filter struct {
	Status *string
	UserID *uuid.UUID
}

// Get returns one invoice.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Invoice, error) {
	r, err := invoicedb.New(s.pool).GetInvoice(ctx, id)
	if postgres.IsNotFound(err) {
		return Invoice{}, ErrNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("get invoice %s: %w", id, err)
	}
	return fromRow(r), nil
}

// OfOrder returns the invoice of order id, ErrNotFound until it is issued.
func (s *Service) OfOrder(ctx context.Context, id uuid.UUID) (Invoice, error) {
	r, err := invoicedb.New(s.pool).InvoiceOfOrder(ctx, id)
	if postgres.IsNotFound(err) {
		return Invoice{}, ErrNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("get invoice of order %s: %w", id, err)
	}
	return fromRow(invoicedb.GetInvoiceRow(r)), nil
}

// List returns one page of invoices, newest first, and the count of all
// that f lets through.
func (s *Service) List(ctx context.Context, f Filter, limit, offset int) ([]Invoice, int64, error) {
	q := invoicedb.New(s.pool)
	rows, err := q.ListInvoices(ctx, invoicedb.ListInvoicesParams{
		Status: f.Status, UserID: f.UserID, RowLimit: int32(limit), RowOffset: int32(offset),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list invoices: %w", err)
	}
	total, err := q.CountInvoices(ctx, invoicedb.CountInvoicesParams{Status: f.Status, UserID: f.UserID})
	if err != nil {
		return nil, 0, fmt.Errorf("count invoices: %w", err)
	}
	out := make([]Invoice, len(rows))
	for i, r := range rows {
		out[i] = fromRow(invoicedb.GetInvoiceRow(r))
	}
	return out, total, nil
}

// PDF returns the invoice's PDF, as rendered when it was issued.
func (s *Service) PDF(ctx context.Context, id uuid.UUID) ([]byte, error) {
	pdf, err := invoicedb.New(s.pool).InvoicePDF(ctx, id)
	if postgres.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get invoice %s's pdf: %w", id, err)
	}
	return pdf, nil
}

// CreditNotePDF returns the PDF of the invoice's credit note, ErrNoCreditNote
// when the invoice is not credited.
func (s *Service) CreditNotePDF(ctx context.Context, id uuid.UUID) ([]byte, error) {
	pdf, err := invoicedb.New(s.pool).CreditNotePDF(ctx, id)
	if postgres.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get invoice %s's credit note pdf: %w", id, err)
	}
	if pdf == nil {
		return nil, ErrNoCreditNote
	}
	return pdf, nil
}
