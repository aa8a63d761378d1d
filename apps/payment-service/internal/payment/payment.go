// Package payment owns payments: the decision rules of the simulated
// payment gateway, the payment state machine, the handlers of order events,
// the decider that settles payments after the gateway's latency, and the
// queries.
package payment

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db/payment/paymentdb"
)

// Statuses of a payment (contract §3).
const (
	StatusProcessing = "PROCESSING"
	StatusApproved   = "APPROVED"
	StatusDeclined   = "DECLINED"
	StatusFailed     = "FAILED"
	StatusCancelled  = "CANCELLED"
	StatusRefunded   = "REFUNDED"
)

// Statuses lists every status, in the order stats report them.
var Statuses = []string{StatusProcessing, StatusApproved, StatusDeclined, StatusFailed, StatusCancelled, StatusRefunded}

// Reasons of a declined or failed payment.
const (
	ReasonCardDeclined      = "CARD_DECLINED"
	ReasonInsufficientFunds = "INSUFFICIENT_FUNDS"
	ReasonGatewayError      = "GATEWAY_ERROR"
	ReasonLimitExceeded     = "LIMIT_EXCEEDED"
)

// Gateway is the simulated payment gateway.
type Gateway struct {
	// Latency is how long the gateway takes to answer.
	Latency time.Duration
	// DeclineRate is the chance (0..1) of a random decline.
	DeclineRate float64
	// Limit is the largest amount approved, in minor units.
	Limit int64
	// draw returns a number in [0,1); nil uses math/rand.
	draw func() float64
}

// Decide applies the decision rules of contract §3, first match wins.
func (g Gateway) Decide(method string, amount int64) (status, reason string) {
	switch {
	case method == "tok_decline":
		return StatusDeclined, ReasonCardDeclined
	case method == "tok_insufficient_funds":
		return StatusDeclined, ReasonInsufficientFunds
	case method == "tok_fail":
		return StatusFailed, ReasonGatewayError
	case amount > g.Limit:
		return StatusDeclined, ReasonLimitExceeded
	case g.DeclineRate > 0 && g.random() < g.DeclineRate:
		return StatusDeclined, ReasonInsufficientFunds
	default:
		return StatusApproved, ""
	}
}

func (g Gateway) random() float64 {
	if g.draw != nil {
		return g.draw()
	}
	return rand.Float64()
}

// Errors of the payment service.
var (
	ErrNotFound = errors.New("payment not found")
)

// Payment is a payment as the API shows it.
type Payment struct {
	ID        uuid.UUID `json:"id"`
	OrderID   uuid.UUID `json:"orderId"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"`
	Reason    *string   `json:"reason"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func fromRow(r paymentdb.Payment) Payment {
	return Payment{
		ID:        r.ID,
		OrderID:   r.OrderID,
		Amount:    r.Amount,
		Currency:  r.Currency,
		Status:    r.Status,
		Reason:    r.Reason,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// StatusStats is the count and sum of the payments in one status.
type StatusStats struct {
	Status      string `json:"status"`
	Count       int64  `json:"count"`
	TotalAmount int64  `json:"totalAmount"`
}

// Stats is the body of GET /api/payments/stats.
type Stats struct {
	ByStatus []StatusStats `json:"byStatus"`
}
