// Package inventory owns products and their stock: the reservation rules,
// the handlers of product commands and order events, and the queries.
package inventory

import (
	"errors"
	"slices"
	"time"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/inventory/inventorydb"
	"github.com/ordersaga/ordersaga/libs/events"
)

// ServiceName is how the inventory service names itself in timelines.
const ServiceName = "inventory-service"

// Schema is the inventory service's database schema.
func Schema() db.Migrations { return db.MustSchema("inventory") }

// Statuses of a reservation line and of an adjustment.
const (
	Held      = "HELD"
	Committed = "COMMITTED"
	Released  = "RELEASED"
	Returned  = "RETURNED"

	Applied             = "APPLIED"
	Refused             = "REFUSED"
	ReasonBelowReserved = "BELOW_RESERVED"
)

// Errors of the inventory service.
var (
	ErrNotFound = errors.New("product not found")
)

// Stock is what the reservation rules know of a product.
type Stock struct {
	Name      string
	Price     int64
	Currency  string
	Available int64
}

// Decision is the outcome of reserving an order's lines: the priced lines
// when every one can be reserved, else the reason and every line with what
// is available of it.
type Decision struct {
	Reserved []events.PricedLine
	Total    int64
	Reason   string
	Rejected []events.RejectedLine
}

// reasonRank is the contract's precedence of the reasons a line fails for
// (§5): the first wins.
var reasonRank = []string{events.ReasonUnknownProduct, events.ReasonCurrencyMismatch, events.ReasonOutOfStock}

// Reserve decides whether lines, of an order in currency, can all be
// reserved from stock (by sku): all lines or none, each priced at its
// product's price now and named with its name now (for the invoice).
func Reserve(lines []events.Line, currency string, stock map[string]Stock) Decision {
	var d Decision
	worst := len(reasonRank)
	for _, l := range lines {
		s, known := stock[l.SKU]
		reason := ""
		switch {
		case !known:
			reason = events.ReasonUnknownProduct
		case s.Currency != currency:
			reason = events.ReasonCurrencyMismatch
		case s.Available < l.Quantity:
			reason = events.ReasonOutOfStock
		}
		if reason != "" {
			worst = min(worst, slices.Index(reasonRank, reason))
		}
		d.Rejected = append(d.Rejected, events.RejectedLine{SKU: l.SKU, Requested: l.Quantity, Available: max(s.Available, 0)})
		d.Reserved = append(d.Reserved, events.PricedLine{SKU: l.SKU, Name: s.Name, Quantity: l.Quantity, UnitPrice: s.Price})
		d.Total += l.Quantity * s.Price
	}
	if worst < len(reasonRank) {
		return Decision{Reason: reasonRank[worst], Rejected: d.Rejected}
	}
	return Decision{Reserved: d.Reserved, Total: d.Total}
}

// Product is a product as the API shows it.
type Product struct {
	SKU       string    `json:"sku"`
	Name      string    `json:"name"`
	Price     int64     `json:"price"`
	Currency  string    `json:"currency"`
	OnHand    int64     `json:"onHand"`
	Reserved  int64     `json:"reserved"`
	Available int64     `json:"available"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func productFromRow(r inventorydb.Product) Product {
	return Product{
		SKU: r.Sku, Name: r.Name, Price: r.Price, Currency: r.Currency,
		OnHand: r.OnHand, Reserved: r.Reserved, Available: r.OnHand - r.Reserved,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// Adjustment is a stock adjustment as the API shows it.
type Adjustment struct {
	AdjustmentID string    `json:"adjustmentId"`
	Delta        int64     `json:"delta"`
	Status       string    `json:"status"`
	Reason       *string   `json:"reason"`
	At           time.Time `json:"at"`
}

func adjustmentFromRow(r inventorydb.Adjustment) Adjustment {
	return Adjustment{AdjustmentID: r.ID.String(), Delta: r.Delta, Status: r.Status, Reason: r.Reason, At: r.At.UTC()}
}
