// Package order owns orders: their state machine, the handlers of order
// commands and payment events, the payment-timeout sweep, and the queries.
package order

import (
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db/order/orderdb"
)

// Statuses of an order (contract §3).
const (
	StatusPendingPayment = "PENDING_PAYMENT"
	StatusPaid           = "PAID"
	StatusCancelled      = "CANCELLED"
	StatusFailed         = "FAILED"
)

// Statuses lists every status, for validation.
var Statuses = []string{StatusPendingPayment, StatusPaid, StatusCancelled, StatusFailed}

var transitions = map[string][]string{
	StatusPendingPayment: {StatusPaid, StatusCancelled, StatusFailed},
	StatusPaid:           {StatusCancelled},
}

// CanTransition reports whether an order may move from one status to another.
func CanTransition(from, to string) bool {
	return slices.Contains(transitions[from], to)
}

// Final reports whether status is an outcome of the saga.
func Final(status string) bool { return status != StatusPendingPayment }

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
