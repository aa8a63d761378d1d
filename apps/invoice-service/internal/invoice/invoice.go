// Package invoice owns invoices and credit notes (contract §6): their
// gapless numbering, their PDF, the handlers of order.paid and
// order.cancelled, and the queries.
package invoice

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/invoice/invoicedb"
)

// ServiceName is how the invoice service names itself in timelines.
const ServiceName = "invoice-service"

// Schema is the invoice service's database schema.
func Schema() db.Migrations { return db.MustSchema("invoice") }

// Statuses of an invoice.
const (
	Issued   = "ISSUED"
	Credited = "CREDITED"
)

// Number series: invoices and credit notes.
const (
	SeriesInvoice    = "INV"
	SeriesCreditNote = "CN"
)

// Errors of the invoice service.
var (
	ErrNotFound     = errors.New("invoice not found")
	ErrNoCreditNote = errors.New("the invoice has no credit note")
)

// Number is a document's number: its series, the UTC year of its issuedAt
// and its place in that year's series, as INV-2026-000042.
func Number(series string, year int, n int64) string {
	return fmt.Sprintf("%s-%04d-%06d", series, year, n)
}

// Line is a line of an invoice as the API shows it. SKU is nil for the one
// line of an order placed with a total.
type Line struct {
	Description string  `json:"description"`
	SKU         *string `json:"sku"`
	Quantity    int64   `json:"quantity"`
	UnitPrice   int64   `json:"unitPrice"`
	Amount      int64   `json:"amount"`
}

// CreditNote is the credit note of a credited invoice.
type CreditNote struct {
	Number   string    `json:"number"`
	IssuedAt time.Time `json:"issuedAt"`
}

// Invoice is an invoice as the API shows it (contract §6).
type Invoice struct {
	ID         uuid.UUID   `json:"id"`
	Number     string      `json:"number"`
	OrderID    uuid.UUID   `json:"orderId"`
	UserID     uuid.UUID   `json:"userId"`
	PaymentID  uuid.UUID   `json:"paymentId"`
	Currency   string      `json:"currency"`
	Lines      []Line      `json:"lines"`
	Total      int64       `json:"total"`
	Status     string      `json:"status"`
	IssuedAt   time.Time   `json:"issuedAt"`
	CreditNote *CreditNote `json:"creditNote"`
}

// fromRow is the API's view of a stored invoice.
func fromRow(r invoicedb.GetInvoiceRow) Invoice {
	var lines []Line
	// Written by issue from a []Line: a failure is a corrupt row, shown
	// without its lines rather than not at all.
	_ = json.Unmarshal(r.Lines, &lines)
	inv := Invoice{
		ID: r.ID, Number: r.Number, OrderID: r.OrderID, UserID: r.UserID, PaymentID: r.PaymentID,
		Currency: r.Currency, Lines: lines, Total: r.Total, Status: r.Status, IssuedAt: r.IssuedAt.UTC(),
	}
	if r.CreditNumber != nil && r.CreditIssuedAt != nil {
		inv.CreditNote = &CreditNote{Number: *r.CreditNumber, IssuedAt: r.CreditIssuedAt.UTC()}
	}
	return inv
}
