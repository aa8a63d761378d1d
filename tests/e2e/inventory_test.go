package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

const inventoryService = "inventory-service"

// sku is a sku of its own for one test.
func sku(name string) string { return name + "-" + uuid.NewString()[:8] }

// createProduct creates a product through the gateway and waits until the
// inventory has it.
func (s *System) createProduct(t testing.TB, sku string, price, onHand int64, currency string) {
	t.Helper()
	resp, err := s.API.CreateProductWithResponse(context.Background(), nil, gatewayclient.NewProduct{
		Sku: sku, Name: "product " + sku, Price: price, Currency: currency, OnHand: onHand})
	require.NoError(t, err, "POST /api/products")
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	require.Equal(t, "/api/products/"+sku, resp.HTTPResponse.Header.Get("Location"))
	s.waitProduct(t, sku, func(gatewayclient.Product) bool { return true })
}

// product is GET /api/products/{sku}: the product, and the answer's status.
func (s *System) product(t testing.TB, sku string) (gatewayclient.Product, int) {
	t.Helper()
	resp, err := s.API.GetProductWithResponse(context.Background(), sku)
	require.NoError(t, err, "GET /api/products/%s", sku)
	if resp.JSON200 == nil {
		return gatewayclient.Product{}, resp.StatusCode()
	}
	return *resp.JSON200, resp.StatusCode()
}

// waitProduct polls the product until done holds, and checks that its
// stock is never negative on the way (contract §9).
func (s *System) waitProduct(t testing.TB, sku string, done func(gatewayclient.Product) bool) gatewayclient.Product {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		p, status := s.product(t, sku)
		if status == http.StatusOK {
			require.GreaterOrEqual(t, p.OnHand, int64(0), "onHand never negative")
			require.GreaterOrEqual(t, p.Available, int64(0), "available never negative")
			require.Equal(t, p.OnHand-p.Reserved, p.Available)
			if done(p) {
				return p
			}
		}
		if time.Now().After(end) {
			t.Fatalf("product %s: condition not met; last %+v (HTTP %d)", sku, p, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stockIs waits until the product has onHand units of which none reserved.
func (s *System) stockIs(t testing.TB, sku string, onHand int64) {
	t.Helper()
	s.waitProduct(t, sku, func(p gatewayclient.Product) bool { return p.OnHand == onHand && p.Reserved == 0 })
}

// placeItems places an order with lines, of a fresh user, paid with method.
func (s *System) placeItems(t testing.TB, method string, lines ...gatewayclient.NewOrderLine) string {
	t.Helper()
	user := uuid.New()
	resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, gatewayclient.NewOrder{UserId: &user, Items: &lines, PaymentMethod: &method})
	require.NoError(t, err, "POST /api/orders with items")
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	require.Equal(t, gatewayclient.OrderAcceptedStatus("PENDING_STOCK"), resp.JSON202.Status)
	return resp.JSON202.OrderId.String()
}

// adjustStock is POST /api/products/{sku}/stock with an Idempotency-Key of
// key ("" for none); it returns the adjustment's id.
func (s *System) adjustStock(t testing.TB, sku string, delta int64, key string) string {
	t.Helper()
	params := &gatewayclient.AdjustStockParams{}
	if key != "" {
		params.IdempotencyKey = &key
	}
	resp, err := s.API.AdjustStockWithResponse(context.Background(), sku, params, gatewayclient.StockAdjustment{Delta: delta})
	require.NoError(t, err, "POST /api/products/%s/stock", sku)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	return resp.JSON202.AdjustmentId.String()
}

// adjustments is GET /api/products/{sku}/adjustments, of up to limit.
func (s *System) adjustments(t testing.TB, sku string, limit int) gatewayclient.AdjustmentPage {
	t.Helper()
	resp, err := s.API.ListAdjustmentsWithResponse(context.Background(), sku, &gatewayclient.ListAdjustmentsParams{Limit: &limit})
	require.NoError(t, err, "GET /api/products/%s/adjustments", sku)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
	return *resp.JSON200
}

func line(sku string, q int) gatewayclient.NewOrderLine {
	return gatewayclient.NewOrderLine{Sku: sku, Quantity: q}
}

func reasonOf(o gatewayclient.Order) string {
	if o.CancelReason == nil {
		return ""
	}
	return *o.CancelReason
}

func TestInventorySaga(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)

	t.Run("three lines paid and sold", func(t *testing.T) {
		a, b, c := sku("A"), sku("B"), sku("C")
		s.createProduct(t, a, 100, 10, "USD")
		s.createProduct(t, b, 250, 5, "USD")
		s.createProduct(t, c, 1000, 3, "USD")
		id := s.placeItems(t, "tok_visa", line(a, 2), line(b, 1), line(c, 3))
		s.waitStatus(t, id, "PAID")
		o := s.mustOrder(t, id)
		require.NotNil(t, o.Total)
		assert.Equal(t, int64(3450), *o.Total, "Σ quantity × price at reservation")
		require.NotNil(t, o.Items)
		require.Len(t, *o.Items, 3)
		for i, want := range [][3]int64{{2, 100, 200}, {1, 250, 250}, {3, 1000, 3000}} {
			l := (*o.Items)[i]
			if assert.NotNil(t, l.UnitPrice) && assert.NotNil(t, l.LineTotal) {
				assert.Equal(t, want, [3]int64{int64(l.Quantity), *l.UnitPrice, *l.LineTotal})
			}
		}
		p, status := s.payment(t, id)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, int64(3450), p.Amount)
		s.stockIs(t, a, 8)
		s.stockIs(t, b, 4)
		s.stockIs(t, c, 0)

		var seen []string
		for _, e := range s.mustTimeline(t, id).Events {
			seen = append(seen, string(e.Service)+" "+e.Type)
		}
		for _, want := range []string{"order-service order.placed", "inventory-service order.placed", "inventory-service stock.reserved",
			"order-service stock.reserved", "inventory-service order.paid", "inventory-service stock.committed"} {
			assert.Contains(t, seen, want)
		}
	})

	t.Run("stock adjustments", func(t *testing.T) {
		a := sku("A")
		s.createProduct(t, a, 100, 10, "USD")
		held := s.placeItems(t, "tok_visa", line(a, 4))
		s.waitStatus(t, held, "PAID")
		s.stockIs(t, a, 6)
		refused := s.adjustStock(t, a, -7, "")
		// Refused only while nothing else changed the stock: wait for it.
		end := time.Now().Add(30 * time.Second)
		for s.adjustments(t, a, 10).Meta.Total != 1 {
			require.False(t, time.Now().After(end), "the adjustment was recorded")
			time.Sleep(20 * time.Millisecond)
		}
		var applied string
		for range 2 { // the same key: one adjustment
			applied = s.adjustStock(t, a, 5, "restock-"+a)
		}
		s.stockIs(t, a, 11)
		page := s.adjustments(t, a, 10)
		require.Len(t, page.Data, 2)
		assert.Equal(t, int64(2), page.Meta.Total)
		byID := map[string]string{}
		for _, d := range page.Data {
			reason := ""
			if d.Reason != nil {
				reason = *d.Reason
			}
			byID[d.AdjustmentId.String()] = fmt.Sprint(d.Delta, " ", d.Status, " ", reason)
		}
		assert.Equal(t, map[string]string{refused: "-7 REFUSED BELOW_RESERVED", applied: "5 APPLIED "}, byID)
	})

	t.Run("out of stock: cancelled, nothing held", func(t *testing.T) {
		a, b := sku("A"), sku("B")
		s.createProduct(t, a, 100, 10, "USD")
		s.createProduct(t, b, 100, 2, "USD")
		id := s.placeItems(t, "tok_visa", line(a, 5), line(b, 3))
		o := s.waitStatus(t, id, "CANCELLED")
		assert.Equal(t, "OUT_OF_STOCK", reasonOf(o))
		assert.Nil(t, s.mustOrder(t, id).Total, "never priced")
		s.stockIs(t, a, 10)
		s.stockIs(t, b, 2)
	})

	t.Run("unknown sku", func(t *testing.T) {
		a := sku("A")
		s.createProduct(t, a, 100, 10, "USD")
		id := s.placeItems(t, "tok_visa", line(a, 1), line(sku("NOPE"), 1))
		o := s.waitStatus(t, id, "CANCELLED")
		assert.Equal(t, "UNKNOWN_PRODUCT", reasonOf(o))
		s.stockIs(t, a, 10)
	})

	t.Run("declined payment gives the units back", func(t *testing.T) {
		a := sku("A")
		s.createProduct(t, a, 100, 10, "USD")
		id := s.placeItems(t, "tok_decline", line(a, 4))
		o := s.waitStatus(t, id, "CANCELLED")
		assert.Equal(t, "PAYMENT_DECLINED", reasonOf(o))
		s.stockIs(t, a, 10)
	})

	t.Run("cancel after paid puts the units back on hand", func(t *testing.T) {
		a := sku("A")
		s.createProduct(t, a, 100, 10, "USD")
		id := s.placeItems(t, "tok_visa", line(a, 4))
		s.waitStatus(t, id, "PAID")
		s.stockIs(t, a, 6)
		require.Equal(t, http.StatusAccepted, s.cancel(t, id))
		s.waitStatus(t, id, "CANCELLED")
		s.stockIs(t, a, 10)
	})

	t.Run("cancel racing the reservation", func(t *testing.T) {
		a := sku("A")
		s.createProduct(t, a, 100, 100, "USD")
		ids := make([]string, 10)
		for i := range ids {
			ids[i] = s.placeItems(t, "tok_visa", line(a, 2))
			// As soon as the order exists (a cancel of an order not yet
			// there is a 404): the reservation may or may not be made.
			s.waitOrder(t, ids[i], 10*time.Second, func(gatewayclient.Order) bool { return true })
			require.Equal(t, http.StatusAccepted, s.cancel(t, ids[i]))
		}
		for _, id := range ids {
			s.waitStatus(t, id, "CANCELLED")
		}
		s.stockIs(t, a, 100)
	})

	t.Run("the race", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			products int
		}{{"one product", 1}, {"three products in different line orders", 3}} {
			t.Run(tc.name, func(t *testing.T) {
				skus := make([]string, tc.products)
				for i := range skus {
					skus[i] = sku(fmt.Sprint("R", i))
					s.createProduct(t, skus[i], 100, 10, "USD")
				}
				ids := make([]string, 64)
				var wg sync.WaitGroup
				for i := range ids {
					wg.Go(func() {
						lines := make([]gatewayclient.NewOrderLine, len(skus))
						for j := range skus {
							lines[j] = line(skus[(i+j)%len(skus)], 1)
						}
						if i%2 == 1 {
							slices.Reverse(lines)
						}
						ids[i] = s.placeItems(t, "tok_visa", lines...)
					})
				}
				wg.Wait()
				count := map[string]int{}
				for _, id := range ids {
					o := s.waitOrder(t, id, 60*time.Second, func(o gatewayclient.Order) bool {
						return o.Status == "PAID" || o.Status == "CANCELLED" || o.Status == "FAILED"
					})
					count[string(o.Status)+" "+reasonOf(o)]++
				}
				assert.Equal(t, map[string]int{"PAID ": 10, "CANCELLED OUT_OF_STOCK": 54}, count)
				for _, k := range skus {
					s.stockIs(t, k, 0)
				}
			})
		}
	})
}

// TestInventoryDown: orders with items wait for the inventory; one
// cancelled meanwhile is never reserved, one left waiting times out.
func TestInventoryDown(t *testing.T) {
	t.Parallel()
	// The timeout is the window in which the first order's cancellation
	// must reach order-service: seconds, for a loaded machine.
	s := Start(t, map[string]string{"ORDER_STOCK_TIMEOUT": "10s"})
	a := sku("A")
	s.createProduct(t, a, 100, 10, "USD")
	s.Stop(inventoryService)

	cancelled := s.placeItems(t, "tok_visa", line(a, 3))
	s.waitStatus(t, cancelled, "PENDING_STOCK")
	require.Equal(t, http.StatusAccepted, s.cancel(t, cancelled),
		"a user may cancel an order waiting for stock")
	o := s.waitStatus(t, cancelled, "CANCELLED")
	assert.Equal(t, "USER_REQUESTED", reasonOf(o))

	timedOut := s.placeItems(t, "tok_visa", line(a, 2))
	o = s.waitStatus(t, timedOut, "CANCELLED")
	assert.Equal(t, "STOCK_TIMEOUT", reasonOf(o))

	s.StartService(inventoryService)
	// Both orders' order.placed and order.cancelled reach the inventory
	// now; whatever it made of them, nothing stays held.
	for _, id := range []string{cancelled, timedOut} {
		end := time.Now().Add(30 * time.Second)
		for {
			tl, status := s.timeline(t, id)
			n := 0
			for _, e := range tl.Events {
				if e.Type == "order.cancelled" || e.Type == "order.placed" {
					n++
				}
			}
			// order-service emitted both, inventory-service received both
			// (payment-service records order.cancelled too).
			if status == http.StatusOK && n >= 5 {
				break
			}
			require.False(t, time.Now().After(end), "the inventory handled order %s's messages: %+v", id, tl.Events)
			time.Sleep(50 * time.Millisecond)
		}
	}
	s.stockIs(t, a, 10)
}
