// Package order owns orders: their state machine, the handlers of order
// commands and payment events, the payment-timeout sweep, and the queries.
package order

import (
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db/order/orderdb"
	"github.com/ordersaga/ordersaga/libs/events"
)

// transitions are the moves of an order between the statuses of the
// contract (events.OrderStatuses).
var transitions = map[string][]string{
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
	Total        int64     `json:"total"`
	Currency     string    `json:"currency"`
	Status       string    `json:"status"`
	CancelReason *string   `json:"cancelReason"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

func fromRow(r orderdb.Order) Order {
	return Order{
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
