package main

import (
	"slices"
	"strings"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// Statuses of the contract (§3).
const (
	statusPending      = "PENDING_PAYMENT"
	statusPendingStock = "PENDING_STOCK"
	statusPaid         = "PAID"
	statusCancelled    = "CANCELLED"
	statusFailed       = "FAILED"

	paymentApproved  = "APPROVED"
	paymentDeclined  = "DECLINED"
	paymentFailed    = "FAILED"
	paymentCancelled = "CANCELLED"
	paymentRefunded  = "REFUNDED"

	reasonUserRequested   = "USER_REQUESTED"
	reasonPaymentDeclined = "PAYMENT_DECLINED"
	reasonOutOfStock      = "OUT_OF_STOCK"

	// noPayment stands in an outcome's payments for an order that never
	// gets one (its stock was refused).
	noPayment = ""
)

// stockReasons are the cancelReasons of an order whose reservation failed
// (contract §5); such an order never gets a payment.
var stockReasons = []string{reasonOutOfStock, "UNKNOWN_PRODUCT", "CURRENCY_MISMATCH", "STOCK_TIMEOUT"}

// cancelPolicy says when the demo cancels a scenario's order.
type cancelPolicy int

const (
	noCancel cancelPolicy = iota
	// cancelAtOnce cancels as soon as the order exists, while its payment
	// is being decided.
	cancelAtOnce
	// cancelOncePaid cancels once the order is PAID.
	cancelOncePaid
)

// outcome is how a saga must end by the contract: the order's status and
// cancelReason ("" for none), and any of the payment statuses.
type outcome struct {
	Status       string
	CancelReason string
	Payments     []string
}

func (o outcome) matches(ord gatewayclient.Order, paymentStatus string) bool {
	return string(ord.Status) == o.Status && reasonOf(ord) == o.CancelReason && slices.Contains(o.Payments, paymentStatus)
}

// String is the outcome as the results table shows it:
// "CANCELLED/USER_REQUESTED · CANCELLED|REFUNDED".
func (o outcome) String() string {
	s := o.Status
	if o.CancelReason != "" {
		s += "/" + o.CancelReason
	}
	payments := make([]string, len(o.Payments))
	for i, p := range o.Payments {
		payments[i] = orNone(p, "none")
	}
	return s + " · " + strings.Join(payments, "|")
}

// scenario is one saga of the walkthrough.
type scenario struct {
	Name string
	// Method is the order's paymentMethod, which decides the payment
	// (contract §3, payment decision).
	Method string
	// Story says in a few words what the newcomer watches.
	Story  string
	Cancel cancelPolicy
	Want   outcome
	// Items are the lines of an order placed with items (contract §5);
	// nil for one placed with a total.
	Items []gatewayclient.NewOrderLine
}

// scenarios are the sagas placed through the gateway, in the order they are
// placed. The early cancel comes last, so that nothing delays it.
var scenarios = []scenario{
	{Name: "approved", Method: "tok_visa", Story: "a card that pays",
		Want: outcome{statusPaid, "", []string{paymentApproved}}},
	{Name: "declined", Method: "tok_decline", Story: "a card that is declined",
		Want: outcome{statusCancelled, reasonPaymentDeclined, []string{paymentDeclined}}},
	{Name: "failed", Method: "tok_fail", Story: "the payment gateway errs",
		Want: outcome{statusFailed, "", []string{paymentFailed}}},
	{Name: "cancel-paid", Method: "tok_visa", Story: "cancelled by its user once PAID: refunded",
		Cancel: cancelOncePaid, Want: outcome{statusCancelled, reasonUserRequested, []string{paymentRefunded}}},
	{Name: "early-cancel", Method: "tok_visa", Story: "cancelled while its payment is being decided",
		Cancel: cancelAtOnce, Want: outcome{statusCancelled, reasonUserRequested, []string{paymentCancelled, paymentRefunded}}},
}

// replayScenario is the order of the dead-letter story: its cancel command
// is dead-lettered, then replayed with sagactl once the order exists.
var replayScenario = scenario{Name: "dlq-replay", Method: "tok_visa", Story: "its cancel dead-lettered, then replayed",
	Cancel: cancelAtOnce, Want: outcome{statusCancelled, reasonUserRequested, []string{paymentCancelled, paymentRefunded}}}

// tracked is one scenario's order as the demo last saw it.
type tracked struct {
	scenario
	ID    string
	Order gatewayclient.Order
	// Payment is the payment's status, "" while the order has none.
	Payment string
	// CancelSent is set once the order's cancellation was accepted.
	CancelSent bool
	// Settled is set once nothing more happens to the order unless
	// someone acts (or when the demo gave up on it).
	Settled bool
	// Failure is a step that went wrong besides the outcome ("" if none).
	Failure string
	// Note explains the outcome where the contract allows more than one.
	Note string
	// StockBefore, StockPaid and StockAfter are the product of a one-line
	// order with items that is cancelled once PAID: before it was placed,
	// when it was PAID, and once its units were back (nil if not read).
	StockBefore, StockPaid, StockAfter *gatewayclient.Product
	// lastErr is the last error while following the order, reported if it
	// never settles.
	lastErr error
}

// OK reports whether the scenario ended as the contract says.
func (t *tracked) OK() bool { return t.Failure == "" && t.Want.matches(t.Order, t.Payment) }

// cancelPending reports whether a cancellation was or will be sent.
func (t *tracked) cancelPending() bool { return t.CancelSent || t.Cancel != noCancel }

// settled reports whether the order and its payment are where they stay
// unless someone acts: both terminal, or PAID and APPROVED with no
// cancellation on its way. A scenario that settled elsewhere than it
// should fails at once instead of waiting for its deadline.
func settled(t *tracked) bool {
	switch t.Order.Status {
	case statusCancelled, statusFailed:
		if t.Payment == noPayment && t.Order.Status == statusCancelled && slices.Contains(stockReasons, reasonOf(t.Order)) {
			return true // its stock was refused: it never gets a payment
		}
		switch t.Payment {
		case paymentDeclined, paymentFailed, paymentCancelled, paymentRefunded:
			return true
		}
	case statusPaid:
		return t.Payment == paymentApproved && !t.cancelPending()
	}
	return false
}

func reasonOf(o gatewayclient.Order) string {
	if o.CancelReason == nil {
		return ""
	}
	return *o.CancelReason
}

// state is an order and its payment in a few words:
// "CANCELLED (USER_REQUESTED) · payment CANCELLED".
func state(o gatewayclient.Order, paymentStatus string) string {
	s := string(o.Status)
	if s == "" {
		s = "not there yet"
	}
	if r := reasonOf(o); r != "" {
		s += " (" + r + ")"
	}
	if paymentStatus == "" {
		if o.Status == statusCancelled && slices.Contains(stockReasons, reasonOf(o)) {
			return s + " · no payment"
		}
		return s + " · no payment yet"
	}
	return s + " · payment " + paymentStatus
}
