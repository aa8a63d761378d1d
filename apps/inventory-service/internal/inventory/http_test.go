package inventory

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

func TestRoutes(t *testing.T) {
	t.Parallel()
	h := newService(t)
	for _, sku := range []string{"C", "A", "B"} {
		h.product(t, sku, 100, 5)
	}
	refused := uuid.New()
	require.NoError(t, handle(t, h, h.adjustStock, &events.StockAdjustRequested{AdjustmentID: uuid.New(), SKU: "A", Delta: 2}))
	require.NoError(t, handle(t, h, h.adjustStock, &events.StockAdjustRequested{AdjustmentID: refused, SKU: "A", Delta: -8}))
	e := web.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), nil)
	Routes(e, h.Service)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, path string
		status     int
		contains   []string
	}{
		{"second page by sku", "/api/products?page=2&limit=2", 200, []string{`"sku":"C"`, `"total":3`, `"totalPages":2`}},
		{"one product", "/api/products/A", 200, []string{`"onHand":7`, `"reserved":0`, `"available":7`, `"price":100`, `"currency":"USD"`}},
		{"unknown product", "/api/products/NOPE", 404, nil},
		{"adjustments, newest first", "/api/products/A/adjustments", 200,
			[]string{`{"adjustmentId":"` + refused.String() + `","delta":-8,"status":"REFUSED","reason":"BELOW_RESERVED"`, `"total":2`}},
		{"adjustments of an unknown product", "/api/products/NOPE/adjustments", 404, nil},
		{"bad limit", "/api/products?limit=0", 400, nil},
		{"timeline of an order without items", "/api/inventory/orders/" + uuid.NewString() + "/timeline", 200, []string{`"events":[]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(tc.path)
			assert.Equal(t, tc.status, status, body)
			for _, c := range tc.contains {
				assert.Contains(t, body, c)
			}
		})
	}
}
