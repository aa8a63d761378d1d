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

// PDF returns the invoice's PDF: rendered on its first fetch and stored,
// the same bytes ever after.
func (s *Service) PDF(ctx context.Context, id uuid.UUID) ([]byte, error) {
	return s.documentPDF(ctx, id, false)
}

// CreditNotePDF returns the PDF of the invoice's credit note, likewise;
// ErrNoCreditNote when the invoice is not credited.
func (s *Service) CreditNotePDF(ctx context.Context, id uuid.UUID) ([]byte, error) {
	return s.documentPDF(ctx, id, true)
}

// documentPDF returns the stored PDF of the invoice or its credit note,
// rendering and storing it first if it is the first fetch. Rendering
// depends on the row alone (the seller as at issue, the creation date the
// issue date), so a concurrent first fetch renders the same bytes, and the
// first stored stands.
func (s *Service) documentPDF(ctx context.Context, id uuid.UUID, credit bool) ([]byte, error) {
	q := invoicedb.New(s.pool)
	r, err := q.InvoiceDocuments(ctx, id)
	if postgres.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get invoice %s: %w", id, err)
	}
	stored := r.Pdf
	if credit {
		if r.CreditNumber == nil || r.CreditIssuedAt == nil {
			return nil, ErrNoCreditNote
		}
		stored = r.CreditPdf
	}
	if stored != nil {
		return stored, nil
	}
	inv := fromRow(invoicedb.GetInvoiceRow{
		ID: r.ID, Number: r.Number, OrderID: r.OrderID, UserID: r.UserID, PaymentID: r.PaymentID, Currency: r.Currency,
		Lines: r.Lines, Total: r.Total, Status: r.Status, IssuedAt: r.IssuedAt, CreditNumber: r.CreditNumber, CreditIssuedAt: r.CreditIssuedAt,
	})
	seller := Seller{Name: r.SellerName, Address: r.SellerAddress}
	if credit {
		pdf, err := RenderPDF(document(inv, "Credit note", *r.CreditNumber, r.CreditIssuedAt.UTC(), inv.Number), seller)
		if err != nil {
			return nil, err
		}
		if err := q.StoreCreditNotePDF(ctx, invoicedb.StoreCreditNotePDFParams{ID: id, CreditPdf: pdf}); err != nil {
			return nil, fmt.Errorf("store invoice %s's credit note pdf: %w", id, err)
		}
	} else {
		pdf, err := RenderPDF(document(inv, "Invoice", inv.Number, inv.IssuedAt, ""), seller)
		if err != nil {
			return nil, err
		}
		if err := q.StoreInvoicePDF(ctx, invoicedb.StoreInvoicePDFParams{ID: id, Pdf: pdf}); err != nil {
			return nil, fmt.Errorf("store invoice %s's pdf: %w", id, err)
		}
	}
	// Read back what stands: ours, or a concurrent first fetch's.
	return s.documentPDF(ctx, id, credit)
}
