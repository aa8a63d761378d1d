// Package order owns orders: their state machine, the handlers of order
// commands and payment events, the payment-timeout sweep, and the queries.
package order

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db/order/orderdb"
	"github.com/ordersaga/ordersaga/libs/events"
)

// transitions are the moves of an order between the statuses of the
// contract (events.OrderStatuses).
var transitions = map[string][]string{
	events.StatusPendingStock:   {events.StatusPendingPayment, events.StatusCancelled},
	events.StatusPendingPayment: {events.StatusPaid, events.StatusCancelled, events.StatusFailed},
	events.StatusPaid:           {events.StatusCancelled},
}

// CanTransition reports whether an order may move from one status to another.
func CanTransition(from, to string) bool {
	return slices.Contains(transitions[from], to)
}

// Errors of the order service.
var (
	ErrNotFound = errors.New("order not found")
)

// Order is an order as the API shows it.
type Order struct {
	ID           uuid.UUID `json:"id"`
	UserID       uuid.UUID `json:"userId"`
	Total        *int64    `json:"total"`
	Currency     string    `json:"currency"`
	Items        []Item    `json:"items"`
	Status       string    `json:"status"`
	CancelReason *string   `json:"cancelReason"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Item is a line of an order placed with items; its prices are nil until
// the stock is reserved.
type Item struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice *int64 `json:"unitPrice"`
	LineTotal *int64 `json:"lineTotal"`
}

// encodeItems is how an order's lines are stored.
func encodeItems(items []Item) ([]byte, error) {
	b, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encode items: %w", err)
	}
	return b, nil
}

func fromRow(r orderdb.Order) Order {
	var items []Item
	if r.Items != nil {
		// Written by encodeItems: a failure is a corrupt row, shown as no
		// items rather than no order.
		_ = json.Unmarshal(r.Items, &items)
	}
	return Order{
		Items:        items,
		ID:           r.ID,
		UserID:       r.UserID,
		Total:        r.Total,
		Currency:     r.Currency,
		Status:       r.Status,
		CancelReason: r.CancelReason,
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
	}
}
