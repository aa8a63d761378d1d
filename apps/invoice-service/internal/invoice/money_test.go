package invoice_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/apps/invoice-service/internal/invoice"
)

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		amount   int64
		currency string
		want     string
	}{
		{"two decimals", 1234, "USD", "12.34 USD"},
		{"no decimals", 1234, "JPY", "1234 JPY"},
		{"three decimals", 1234, "BHD", "1.234 BHD"},
		{"below one unit, two decimals", 5, "EUR", "0.05 EUR"},
		{"below one unit, three decimals", 7, "KWD", "0.007 KWD"},
		{"exactly one unit", 100, "USD", "1.00 USD"},
		{"zero", 0, "USD", "0.00 USD"},
		{"zero, no decimals", 0, "KRW", "0 KRW"},
		{"negative (a credit)", -1234, "USD", "-12.34 USD"},
		{"large", 123456789, "USD", "1234567.89 USD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, invoice.FormatAmount(tc.amount, tc.currency))
		})
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "TND": 3} {
		assert.Equal(t, want, invoice.MinorUnits(code), code)
	}
}
