package payment

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	low := func() float64 { return 0.1 }
	high := func() float64 { return 0.9 }
	cases := []struct {
		name       string
		gateway    Gateway
		method     string
		amount     int64
		wantStatus string
		wantReason string
	}{
		{"approved", Gateway{Limit: 1000}, "tok_visa", 1000, StatusApproved, ""},
		{"any other token is approved", Gateway{Limit: 1000}, "tok_mastercard", 5, StatusApproved, ""},
		{"card declined", Gateway{Limit: 1000}, "tok_decline", 5, StatusDeclined, ReasonCardDeclined},
		{"insufficient funds", Gateway{Limit: 1000}, "tok_insufficient_funds", 5, StatusDeclined, ReasonInsufficientFunds},
		{"gateway failure", Gateway{Limit: 1000}, "tok_fail", 5, StatusFailed, ReasonGatewayError},
		{"over the limit", Gateway{Limit: 1000}, "tok_visa", 1001, StatusDeclined, ReasonLimitExceeded},
		{"token rules come before the limit", Gateway{Limit: 1000}, "tok_fail", 5000, StatusFailed, ReasonGatewayError},
		{"declined before failed is impossible: decline token wins over limit", Gateway{Limit: 1}, "tok_decline", 5000, StatusDeclined, ReasonCardDeclined},
		{"random decline drawn", Gateway{Limit: 1000, DeclineRate: 0.5, draw: low}, "tok_visa", 5, StatusDeclined, ReasonInsufficientFunds},
		{"random decline not drawn", Gateway{Limit: 1000, DeclineRate: 0.5, draw: high}, "tok_visa", 5, StatusApproved, ""},
		{"limit before random", Gateway{Limit: 1, DeclineRate: 1, draw: low}, "tok_visa", 5, StatusDeclined, ReasonLimitExceeded},
		{"rate zero never declines", Gateway{Limit: 1000, DeclineRate: 0, draw: func() float64 { return 0 }}, "tok_visa", 5, StatusApproved, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, reason := tc.gateway.Decide(tc.method, tc.amount)
			assert.Equal(t, tc.wantStatus, status)
			assert.Equal(t, tc.wantReason, reason)
		})
	}
}
