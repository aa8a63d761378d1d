package inventory

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/events"
)

func TestReserveRules(t *testing.T) {
	t.Parallel()
	stock := map[string]Stock{
		"A":   {Name: "Mug", Price: 250, Currency: "USD", Available: 5},
		"B":   {Price: 100, Currency: "USD", Available: 0},
		"C":   {Name: "Cap", Price: 70, Currency: "USD", Available: 3},
		"EUR": {Price: 300, Currency: "EUR", Available: 9},
	}
	line := func(sku string, q int64) events.Line { return events.Line{SKU: sku, Quantity: q} }
	cases := []struct {
		name       string
		lines      []events.Line
		wantReason string
		wantTotal  int64
		wantAvail  []int64
	}{
		{"every line available", []events.Line{line("A", 5), line("C", 3)}, "", 0, nil},
		{"out of stock", []events.Line{line("A", 6)}, events.ReasonOutOfStock, 0, []int64{5}},
		{"one line short fails them all", []events.Line{line("A", 1), line("B", 1)}, events.ReasonOutOfStock, 0, []int64{5, 0}},
		{"currency mismatch beats out of stock", []events.Line{line("B", 1), line("EUR", 1)}, events.ReasonCurrencyMismatch, 0, []int64{0, 9}},
		{"unknown product beats both", []events.Line{line("B", 1), line("EUR", 1), line("Z", 3)}, events.ReasonUnknownProduct, 0, []int64{0, 9, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Reserve(tc.lines, "USD", stock)
			assert.Equal(t, tc.wantReason, d.Reason)
			if tc.wantReason != "" {
				assert.Empty(t, d.Reserved, "all lines or none")
				var avail []int64
				for i, r := range d.Rejected {
					assert.Equal(t, tc.lines[i].SKU, r.SKU)
					assert.Equal(t, tc.lines[i].Quantity, r.Requested)
					avail = append(avail, r.Available)
				}
				assert.Equal(t, tc.wantAvail, avail, "every line with what is available of it")
				return
			}
			assert.Empty(t, d.Rejected)
		})
	}
	t.Run("priced at the products' prices, named with their names", func(t *testing.T) {
		d := Reserve([]events.Line{line("C", 1), line("A", 2)}, "USD", stock)
		assert.Equal(t, []events.PricedLine{{SKU: "C", Name: "Cap", Quantity: 1, UnitPrice: 70}, {SKU: "A", Name: "Mug", Quantity: 2, UnitPrice: 250}}, d.Reserved,
			"in the order's line order")
		assert.Equal(t, int64(570), d.Total)
	})
}
