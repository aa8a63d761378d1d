package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const inventoryService = "inventory-service"

type product struct {
	SKU       string `json:"sku"`
	Price     int64  `json:"price"`
	Currency  string `json:"currency"`
	OnHand    int64  `json:"onHand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}

type orderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice *int64 `json:"unitPrice"`
	LineTotal *int64 `json:"lineTotal"`
}

type itemsOrder struct {
	Status       string      `json:"status"`
	Total        *int64      `json:"total"`
	CancelReason *string     `json:"cancelReason"`
	Items        []orderLine `json:"items"`
}

// sku is a sku of its own for one test.
func sku(name string) string { return name + "-" + uuid.NewString()[:8] }

// createProduct creates a product through the gateway and waits until the
// inventory has it.
func (s *System) createProduct(t testing.TB, sku string, price, onHand int64, currency string) {
	t.Helper()
	resp := s.Do(http.MethodPost, "/api/products", map[string]any{
		"sku": sku, "name": "product " + sku, "price": price, "currency": currency, "onHand": onHand}, nil, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /api/products")
	require.Equal(t, "/api/products/"+sku, resp.Header.Get("Location"))
	s.waitProduct(t, sku, func(product) bool { return true })
}

// waitProduct polls the product until done holds, and checks that its
// stock is never negative on the way (contract §9).
func (s *System) waitProduct(t testing.TB, sku string, done func(product) bool) product {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		var p product
		resp := s.Do(http.MethodGet, "/api/products/"+sku, nil, nil, &p)
		if resp.StatusCode == http.StatusOK {
			require.GreaterOrEqual(t, p.OnHand, int64(0), "onHand never negative")
			require.GreaterOrEqual(t, p.Available, int64(0), "available never negative")
			require.Equal(t, p.OnHand-p.Reserved, p.Available)
			if done(p) {
				return p
			}
		}
		if time.Now().After(end) {
			t.Fatalf("product %s: condition not met; last %+v (HTTP %d)", sku, p, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stockIs waits until the product has onHand units of which none reserved.
func (s *System) stockIs(t testing.TB, sku string, onHand int64) {
	t.Helper()
	s.waitProduct(t, sku, func(p product) bool { return p.OnHand == onHand && p.Reserved == 0 })
}

func (s *System) placeItems(t testing.TB, method string, lines ...orderLine) string {
	t.Helper()
	items := make([]map[string]any, len(lines))
	for i, l := range lines {
		items[i] = map[string]any{"sku": l.SKU, "quantity": l.Quantity}
	}
	var a accepted
	resp := s.Do(http.MethodPost, "/api/orders", map[string]any{"userId": uuid.NewString(), "items": items, "paymentMethod": method}, nil, &a)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /api/orders with items")
	require.Equal(t, "PENDING_STOCK", a.Status)
	return a.OrderID
}

func (s *System) itemsOrder(t testing.TB, id string) itemsOrder {
	t.Helper()
	var o itemsOrder
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders/"+id, nil, nil, &o).StatusCode)
	return o
}

func line(sku string, q int64) orderLine { return orderLine{SKU: sku, Quantity: q} }

func reasonOf(o order) string {
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
		o := s.itemsOrder(t, id)
		require.NotNil(t, o.Total)
		assert.Equal(t, int64(3450), *o.Total, "Σ quantity × price at reservation")
		require.Len(t, o.Items, 3)
		for i, want := range [][3]int64{{2, 100, 200}, {1, 250, 250}, {3, 1000, 3000}} {
			l := o.Items[i]
			if assert.NotNil(t, l.UnitPrice) && assert.NotNil(t, l.LineTotal) {
				assert.Equal(t, want, [3]int64{l.Quantity, *l.UnitPrice, *l.LineTotal})
			}
		}
		var p payment
		require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/payments/order/"+id, nil, nil, &p).StatusCode)
		assert.Equal(t, int64(3450), p.Amount)
		s.stockIs(t, a, 8)
		s.stockIs(t, b, 4)
		s.stockIs(t, c, 0)

		var tl struct {
			Events []struct{ Service, Type string } `json:"events"`
		}
		require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders/"+id+"/timeline", nil, nil, &tl).StatusCode)
		var seen []string
		for _, e := range tl.Events {
			seen = append(seen, e.Service+" "+e.Type)
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
		var adj struct {
			AdjustmentID string `json:"adjustmentId"`
		}
		require.Equal(t, http.StatusAccepted, s.Do(http.MethodPost, "/api/products/"+a+"/stock", map[string]any{"delta": -7}, nil, &adj).StatusCode)
		refused := adj.AdjustmentID
		// Refused only while nothing else changed the stock: wait for it.
		end := time.Now().Add(30 * time.Second)
		for {
			var first struct{ Meta struct{ Total int64 } }
			s.Do(http.MethodGet, "/api/products/"+a+"/adjustments", nil, nil, &first)
			if first.Meta.Total == 1 {
				break
			}
			require.False(t, time.Now().After(end), "the adjustment was recorded")
			time.Sleep(20 * time.Millisecond)
		}
		for range 2 { // the same key: one adjustment
			require.Equal(t, http.StatusAccepted, s.Do(http.MethodPost, "/api/products/"+a+"/stock", map[string]any{"delta": 5},
				map[string]string{"Idempotency-Key": "restock-" + a}, &adj).StatusCode)
		}
		s.stockIs(t, a, 11)
		var page struct {
			Data []struct {
				AdjustmentID string  `json:"adjustmentId"`
				Delta        int64   `json:"delta"`
				Status       string  `json:"status"`
				Reason       *string `json:"reason"`
			} `json:"data"`
			Meta struct{ Total int64 } `json:"meta"`
		}
		require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/products/"+a+"/adjustments?limit=10", nil, nil, &page).StatusCode)
		require.Len(t, page.Data, 2)
		assert.Equal(t, int64(2), page.Meta.Total)
		byID := map[string]string{}
		for _, d := range page.Data {
			reason := ""
			if d.Reason != nil {
				reason = *d.Reason
			}
			byID[d.AdjustmentID] = fmt.Sprint(d.Delta, " ", d.Status, " ", reason)
		}
		assert.Equal(t, map[string]string{refused: "-7 REFUSED BELOW_RESERVED", adj.AdjustmentID: "5 APPLIED "}, byID)
	})

	t.Run("out of stock: cancelled, nothing held", func(t *testing.T) {
		a, b := sku("A"), sku("B")
		s.createProduct(t, a, 100, 10, "USD")
		s.createProduct(t, b, 100, 2, "USD")
		id := s.placeItems(t, "tok_visa", line(a, 5), line(b, 3))
		o := s.waitStatus(t, id, "CANCELLED")
		assert.Equal(t, "OUT_OF_STOCK", reasonOf(o))
		assert.Nil(t, s.itemsOrder(t, id).Total, "never priced")
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
		require.Equal(t, http.StatusAccepted, s.Do(http.MethodPatch, "/api/orders/"+id+"/cancel", nil, nil, nil).StatusCode)
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
			s.waitOrder(t, ids[i], 10*time.Second, func(order) bool { return true })
			require.Equal(t, http.StatusAccepted, s.Do(http.MethodPatch, "/api/orders/"+ids[i]+"/cancel", nil, nil, nil).StatusCode)
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
						lines := make([]orderLine, len(skus))
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
					o := s.waitOrder(t, id, 60*time.Second, func(o order) bool { return o.Status == "PAID" || o.Status == "CANCELLED" || o.Status == "FAILED" })
					count[o.Status+" "+reasonOf(o)]++
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
	s := Start(t, map[string]string{"ORDER_STOCK_TIMEOUT": "2s"})
	a := sku("A")
	s.createProduct(t, a, 100, 10, "USD")
	s.Stop(inventoryService)

	cancelled := s.placeItems(t, "tok_visa", line(a, 3))
	s.waitStatus(t, cancelled, "PENDING_STOCK")
	require.Equal(t, http.StatusAccepted, s.Do(http.MethodPatch, "/api/orders/"+cancelled+"/cancel", nil, nil, nil).StatusCode,
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
			var tl struct {
				Events []struct{ Type string } `json:"events"`
			}
			resp := s.Do(http.MethodGet, "/api/orders/"+id+"/timeline", nil, nil, &tl)
			n := 0
			for _, e := range tl.Events {
				if e.Type == "order.cancelled" || e.Type == "order.placed" {
					n++
				}
			}
			// order-service emitted both, inventory-service received both
			// (payment-service records order.cancelled too).
			if resp.StatusCode == http.StatusOK && n >= 5 {
				break
			}
			require.False(t, time.Now().After(end), "the inventory handled order %s's messages: %+v", id, tl.Events)
			time.Sleep(50 * time.Millisecond)
		}
	}
	s.stockIs(t, a, 10)
}
