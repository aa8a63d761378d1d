package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

func TestMoney(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		minor int64
		want  string
	}{
		{"cents", 1250, "12.50 USD"},
		{"under one unit", 5, "0.05 USD"},
		{"zero", 0, "0.00 USD"},
		{"negative", -1999, "-19.99 USD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, money(tc.minor, "USD"))
		})
	}
}

func stockOf(available map[string]int64) map[string]gatewayclient.Product {
	stock := map[string]gatewayclient.Product{}
	for _, p := range catalogue {
		stock[p.Sku] = gatewayclient.Product{Sku: p.Sku, Name: p.Name, Price: p.Price, Currency: p.Currency,
			OnHand: available[p.Sku], Available: available[p.Sku]}
	}
	return stock
}

func TestItemScenarios(t *testing.T) {
	t.Parallel()
	t.Run("one poster more than there is", func(t *testing.T) {
		all, err := itemScenarios(stockOf(map[string]int64{skuMug: 10, skuTee: 10, skuCap: 10, skuPoster: 2}))
		require.NoError(t, err)
		require.Len(t, all, 3)
		byName := map[string]scenario{}
		for _, sc := range all {
			byName[sc.Name] = sc
		}
		assert.Equal(t, []gatewayclient.NewOrderLine{{Sku: skuPoster, Quantity: 3}}, byName["out-of-stock"].Items)
		assert.Equal(t, outcome{statusCancelled, reasonOutOfStock, []string{noPayment}}, byName["out-of-stock"].Want)
		assert.Equal(t, cancelOncePaid, byName["items-cancel"].Cancel)
	})
	t.Run("none left", func(t *testing.T) {
		all, err := itemScenarios(stockOf(map[string]int64{skuMug: 10, skuTee: 10, skuCap: 10}))
		require.NoError(t, err)
		assert.Equal(t, 1, all[1].Items[0].Quantity)
	})
	errs := []struct {
		name      string
		available map[string]int64
		want      string
	}{
		{"too many posters to exceed", map[string]int64{skuMug: 10, skuTee: 10, skuCap: 10, skuPoster: maxQuantity}, skuPoster},
		{"too few caps", map[string]int64{skuMug: 10, skuTee: 10, skuCap: 2}, "DEMO-CAP has 2 available, the demo needs 3"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := itemScenarios(stockOf(tc.available))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestShortPath(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "/api/orders/4f0c3a4e/cancel", shortPath("/api/orders/4f0c3a4e-0000-4000-8000-000000000001/cancel"))
	assert.Equal(t, "/api/payments/stats", shortPath("/api/payments/stats"))
}
