package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/events"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

func TestCurrencies(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range gateway.Currencies {
		assert.True(t, events.IsCurrencyCode(c), "%s passes the message contract's check, or every order in it would be dead-lettered", c)
		assert.False(t, seen[c], "%s listed once", c)
		seen[c] = true
	}
	cases := []struct {
		code string
		ok   bool
	}{
		{"USD", true}, {"EUR", true}, {"JPY", true}, {"XOF", true}, {"XCG", true}, {"ZWG", true}, {"CLF", true},
		{"usd", false}, {"Usd", false}, {"US", false}, {"USDX", false}, {"", false}, {"ABC", false},
		{"XXX", true},  // no currency: still an ISO 4217 code (contract §2)
		{"XTS", true},  // testing
		{"XAU", true},  // gold
		{"XDR", true},  // special drawing right
		{"DEM", false}, // withdrawn in 2002
		{"CNH", false}, // a market code, not ISO 4217
		{"BTC", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.ok, gateway.IsCurrency(tc.code), "IsCurrency(%q)", tc.code)
	}
}
