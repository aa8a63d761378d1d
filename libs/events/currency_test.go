package events_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/events"
)

func TestIsCurrencyCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code string
		ok   bool
	}{
		{"USD", true}, {"EUR", true}, {"JPY", true},
		// Current codes newer than golang.org/x/text's data: an order in
		// one of them must not be dead-lettered.
		{"MRU", true}, {"VES", true}, {"VED", true}, {"UYW", true}, {"SLE", true}, {"ZWG", true}, {"XCG", true},
		{"usd", false}, {"US", false}, {"EURO", false}, {"ABC", false}, {"", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.ok, events.IsCurrencyCode(tc.code), "IsCurrencyCode(%q)", tc.code)
	}
}
