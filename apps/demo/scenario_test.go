package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

func ord(status, reason string) gatewayclient.Order {
	o := gatewayclient.Order{Status: gatewayclient.OrderStatus(status)}
	if reason != "" {
		o.CancelReason = &reason
	}
	return o
}

func TestOutcomeMatches(t *testing.T) {
	t.Parallel()
	earlyCancel := outcome{statusCancelled, reasonUserRequested, []string{paymentCancelled, paymentRefunded}}
	paid := outcome{statusPaid, "", []string{paymentApproved}}
	cases := []struct {
		name    string
		want    outcome
		order   gatewayclient.Order
		payment string
		match   bool
	}{
		{"paid and approved", paid, ord(statusPaid, ""), paymentApproved, true},
		{"paid, payment not there yet", paid, ord(statusPaid, ""), "", false},
		{"declined instead of paid", paid, ord(statusCancelled, reasonPaymentDeclined), paymentDeclined, false},
		{"cancel: payment cancelled", earlyCancel, ord(statusCancelled, reasonUserRequested), paymentCancelled, true},
		{"cancel: payment refunded", earlyCancel, ord(statusCancelled, reasonUserRequested), paymentRefunded, true},
		{"cancel: payment still approved", earlyCancel, ord(statusCancelled, reasonUserRequested), paymentApproved, false},
		{"cancelled for another reason", earlyCancel, ord(statusCancelled, "PAYMENT_TIMEOUT"), paymentRefunded, false},
		{"a reason where none belongs", paid, ord(statusPaid, reasonUserRequested), paymentApproved, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.match, tc.want.matches(tc.order, tc.payment))
		})
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "PAID · APPROVED", outcome{statusPaid, "", []string{paymentApproved}}.String())
	assert.Equal(t, "CANCELLED/USER_REQUESTED · CANCELLED|REFUNDED",
		outcome{statusCancelled, reasonUserRequested, []string{paymentCancelled, paymentRefunded}}.String())
	assert.Equal(t, "CANCELLED/OUT_OF_STOCK · none", outcome{statusCancelled, reasonOutOfStock, []string{noPayment}}.String())
}

func TestSettled(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		cancel     cancelPolicy
		cancelSent bool
		order      gatewayclient.Order
		payment    string
		settled    bool
	}{
		{"pending", noCancel, false, ord(statusPending, ""), "PROCESSING", false},
		{"paid, nothing more to come", noCancel, false, ord(statusPaid, ""), paymentApproved, true},
		{"paid, payment not read yet", noCancel, false, ord(statusPaid, ""), "", false},
		{"paid, about to be cancelled", cancelOncePaid, false, ord(statusPaid, ""), paymentApproved, false},
		{"paid, cancel on its way", cancelOncePaid, true, ord(statusPaid, ""), paymentApproved, false},
		{"cancelled, refund on its way", cancelOncePaid, true, ord(statusCancelled, reasonUserRequested), paymentApproved, false},
		{"cancelled and refunded", cancelOncePaid, true, ord(statusCancelled, reasonUserRequested), paymentRefunded, true},
		{"cancelled at once, payment being decided", cancelAtOnce, true, ord(statusCancelled, reasonUserRequested), "PROCESSING", false},
		{"cancelled at once, no payment yet", cancelAtOnce, true, ord(statusCancelled, reasonUserRequested), "", false},
		{"declined where paid was due: settled, wrong", noCancel, false, ord(statusCancelled, reasonPaymentDeclined), paymentDeclined, true},
		{"failed", noCancel, false, ord(statusFailed, ""), paymentFailed, true},
		{"out of stock: never a payment", noCancel, false, ord(statusCancelled, reasonOutOfStock), noPayment, true},
		{"pending stock", noCancel, false, ord(statusPendingStock, ""), noPayment, false},
		{"cancelled by its user, no payment yet", noCancel, false, ord(statusCancelled, reasonUserRequested), noPayment, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &tracked{scenario: scenario{Cancel: tc.cancel}, CancelSent: tc.cancelSent, Order: tc.order, Payment: tc.payment}
			assert.Equal(t, tc.settled, settled(tr))
		})
	}
}

func TestState(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "CANCELLED (USER_REQUESTED) · payment CANCELLED", state(ord(statusCancelled, reasonUserRequested), paymentCancelled))
	assert.Equal(t, "PENDING_PAYMENT · no payment yet", state(ord(statusPending, ""), ""))
	assert.Equal(t, "not there yet · no payment yet", state(gatewayclient.Order{}, ""))
	assert.Equal(t, "CANCELLED (OUT_OF_STOCK) · no payment", state(ord(statusCancelled, reasonOutOfStock), ""))
}
