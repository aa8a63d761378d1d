package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// catalogue is the products a fault scenario's orders with items draw
// from: three with stock for every order, and one scarce product that only
// some of the orders wanting it get (the others are CANCELLED
// OUT_OF_STOCK), so that both outcomes of the reservation run under the
// fault.
type catalogue struct {
	plenty  []string
	scarce  string
	initial map[string]int64
	// posted counts the stock adjustments the gateway accepted, by sku.
	posted map[string]int
	// reads counts the stock samples taken while the scenario ran.
	reads atomic.Int64
	stop  func()
}

// newCatalogue creates the products for a load of n orders and starts
// sampling their stock (contract §9: never negative, at any moment).
func (s *System) newCatalogue(t testing.TB, n int) *catalogue {
	t.Helper()
	c := &catalogue{initial: map[string]int64{}, posted: map[string]int{}}
	for i := range 3 {
		k := sku(fmt.Sprint("P", i))
		// An order with items takes at most 2 units of a product: 2n
		// covers every order and the negative adjustment.
		c.initial[k] = int64(2 * n)
		s.createProduct(t, k, int64(100+50*i), c.initial[k], "USD")
		c.plenty = append(c.plenty, k)
	}
	c.scarce = sku("SCARCE")
	// About one order in nine wants one scarce unit: half of them get one.
	c.initial[c.scarce] = int64(max(2, n/20))
	s.createProduct(t, c.scarce, 999, c.initial[c.scarce], "USD")
	c.sample(t, s)
	return c
}

// order is the body of a load's i-th order and, for an order with items,
// its lines: one order in three has items, one in three of those wants the
// scarce product as well; the others have a total, as before issue 10.
func (c *catalogue) order(i int) (gatewayclient.NewOrder, []gatewayclient.NewOrderLine) {
	if i%3 != 1 {
		return totalOrder(uuid.NewString(), int64(100+i), ""), nil
	}
	k := i / 3
	var lines []gatewayclient.NewOrderLine
	for j := range 1 + k%3 {
		lines = append(lines, line(c.plenty[(k+j)%len(c.plenty)], 1+(k+j)%2))
	}
	if k%3 == 0 {
		lines = append(lines, line(c.scarce, 1))
	}
	method := "tok_visa"
	user := uuid.New()
	return gatewayclient.NewOrder{UserId: &user, Items: &lines, PaymentMethod: &method}, lines
}

// place POSTs the i-th order and requires it accepted.
func (c *catalogue) place(t testing.TB, s *System, i int) (string, []gatewayclient.NewOrderLine) {
	t.Helper()
	body, lines := c.order(i)
	resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, body)
	require.NoError(t, err, "POST /api/orders %d", i)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	return resp.JSON202.OrderId.String(), lines
}

// adjust restocks one product and takes units off another, as a warehouse
// would while orders flow.
func (c *catalogue) adjust(s *System) {
	for k, delta := range map[string]int64{c.plenty[0]: 7, c.plenty[1]: -5} {
		resp, err := s.API.AdjustStockWithResponse(context.Background(), k, nil, gatewayclient.StockAdjustment{Delta: delta})
		if err == nil && resp.StatusCode() == http.StatusAccepted {
			c.posted[k]++
		}
	}
}

// sample reads every product every 100 ms until c.stop, checking the
// stock is never negative and available = onHand − reserved. Reads the
// inventory cannot answer (it may be down: the fault) are skipped.
func (c *catalogue) sample(t testing.TB, s *System) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, k := range c.skus() {
				p, status := s.product(t, k)
				if status != http.StatusOK {
					continue
				}
				c.reads.Add(1)
				// assert, not require: this is not the test's goroutine.
				assert.GreaterOrEqual(t, p.OnHand, int64(0), "%s: onHand never negative", k)
				assert.GreaterOrEqual(t, p.Available, int64(0), "%s: available never negative", k)
				assert.Equal(t, p.OnHand-p.Reserved, p.Available, "%s: available = onHand − reserved", k)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	c.stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(c.stop)
}

func (c *catalogue) skus() []string { return append(slices.Clone(c.plenty), c.scarce) }

// stockFigures is what the §9 check found.
type stockFigures struct {
	items, paidItems, outOfStock int
	sold                         int64
	final                        time.Time     // when every order was final
	settled                      time.Duration // how long the stock took after that
}

// settle waits until every accepted order is final and checks contract §3
// and §9 by end: every order PAID but those with the scarce product the
// inventory refused, the stock back to initial + applied adjustments −
// units sold, nothing reserved, and each order's own stock story.
func (s *System) settle(t testing.TB, c *catalogue, r loadResult, end time.Time) (map[string]int, stockFigures) {
	t.Helper()
	outcomes := s.checkInvariants(t, r.accepted, time.Until(end))
	f := stockFigures{final: time.Now()}
	sold := map[string]int64{}
	var paid, cancelled []string
	otherEnds := map[string]int{} // neither PAID nor refused for want of stock
	for id, lines := range r.lines {
		f.items++
		o := s.mustOrder(t, id)
		switch o.Status {
		case "PAID":
			f.paidItems++
			paid = append(paid, id)
			if assert.NotNil(t, o.Items, "PAID order %s has its lines", id) && assert.Len(t, *o.Items, len(lines), "PAID order %s has its lines", id) {
				for i, l := range *o.Items {
					assert.Equal(t, [2]any{lines[i].Sku, lines[i].Quantity}, [2]any{l.Sku, l.Quantity}, "order %s line %d", id, i)
					assert.NotNil(t, l.UnitPrice, "PAID order %s: line %d priced at reservation", id, i)
					sold[l.Sku] += int64(l.Quantity)
					f.sold += int64(l.Quantity)
				}
			}
		default:
			cancelled = append(cancelled, id)
			if o.CancelReason != nil && *o.CancelReason == "OUT_OF_STOCK" {
				f.outOfStock++
				assert.True(t, slices.ContainsFunc(lines, func(l gatewayclient.NewOrderLine) bool { return l.Sku == c.scarce }),
					"order %s refused OUT_OF_STOCK without the scarce product: %+v", id, lines)
				assert.Nil(t, o.Total, "order %s refused: never priced", id)
			} else {
				reason := "no reason"
				if o.CancelReason != nil {
					reason = *o.CancelReason
				}
				otherEnds[string(o.Status)+" "+reason]++
			}
		}
	}
	want := map[string]int{"PAID/APPROVED": len(r.accepted) - f.outOfStock}
	if f.outOfStock > 0 {
		want["CANCELLED/"] = f.outOfStock // no payment was ever asked for
	}
	assert.Equal(t, want, outcomes, "every accepted order paid once, but those the scarce product's stock refused")
	assert.Empty(t, otherEnds, "orders with items that ended neither PAID nor OUT_OF_STOCK, by status and reason")
	scarceOrders := 0
	for _, lines := range r.lines {
		if slices.ContainsFunc(lines, func(l gatewayclient.NewOrderLine) bool { return l.Sku == c.scarce }) {
			scarceOrders++
		}
	}
	if int64(scarceOrders) > c.initial[c.scarce] {
		assert.Positive(t, f.outOfStock, "%d orders for %d scarce units: some refused", scarceOrders, c.initial[c.scarce])
	}

	// A POST answered 503 promised nothing, but its command may still have
	// reached the broker (the confirm was what got lost): such an order is
	// then placed and paid like any other, and its units are sold too.
	if n := s.soldUnanswered(t, r.lines, sold); n > 0 {
		t.Logf("%d orders with items answered 503 took effect all the same (their confirms were lost)", n)
	}

	// The inventory hears of a final order after the order service: wait
	// for the releases and commits to land.
	for _, k := range c.skus() {
		s.stockSettles(t, c, k, sold[k], end)
	}
	f.settled = time.Since(f.final)
	c.stop()

	// Each order's own story, from the inventory's side of its timeline.
	for _, id := range paid {
		s.timelineHas(t, id, end, func(seen map[string]bool) string {
			switch {
			case !seen["stock.reserved"] || !seen["stock.committed"]:
				return "PAID with all its lines reserved and then committed"
			case seen["stock.released"] || seen["stock.returned"]:
				return "PAID: its units neither released nor returned"
			}
			return ""
		})
	}
	for _, id := range cancelled {
		s.timelineHas(t, id, end, func(seen map[string]bool) string {
			switch {
			case seen["stock.reserved"] && !seen["stock.released"] && !seen["stock.returned"]:
				return "CANCELLED/FAILED: a reservation released"
			case seen["stock.committed"] && !seen["stock.returned"]:
				return "CANCELLED/FAILED: sold units returned"
			}
			return ""
		})
	}
	return outcomes, f
}

// stockSettles waits until sku has nothing reserved and onHand = initial +
// applied adjustments − sold, and asserts it at end.
func (s *System) stockSettles(t testing.TB, c *catalogue, k string, sold int64, end time.Time) {
	t.Helper()
	for {
		p, productStatus := s.product(t, k)
		limit := 100
		ar, err := s.API.ListAdjustmentsWithResponse(context.Background(), k, &gatewayclient.ListAdjustmentsParams{Limit: &limit})
		require.NoError(t, err, "GET /api/products/%s/adjustments", k)
		var page gatewayclient.AdjustmentPage
		if ar.JSON200 != nil {
			page = *ar.JSON200
		}
		applied := int64(0)
		for _, a := range page.Data {
			if a.Status == "APPLIED" {
				applied += a.Delta
			}
		}
		want := c.initial[k] + applied - sold
		ok := productStatus == http.StatusOK && ar.StatusCode() == http.StatusOK && len(page.Data) >= c.posted[k]
		if ok && p.Reserved == 0 && p.OnHand == want {
			return
		}
		if time.Now().After(end) {
			assert.True(t, ok, "%s readable (HTTP %d, %d), its %d adjustments recorded: %d", k, productStatus, ar.StatusCode(), c.posted[k], len(page.Data))
			assert.Zero(t, p.Reserved, "%s: nothing reserved once every order is final", k)
			assert.Equal(t, want, p.OnHand, "%s: onHand = %d initial + %d applied − %d sold", k, c.initial[k], applied, sold)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timelineHas waits until problem, given the types inventory-service
// recorded for the order, returns "", and fails with its answer at end.
func (s *System) timelineHas(t testing.TB, id string, end time.Time, problem func(map[string]bool) string) {
	t.Helper()
	for {
		tl, status := s.timeline(t, id)
		seen := map[string]bool{}
		for _, e := range tl.Events {
			if e.Service == inventoryService {
				seen[e.Type] = true
			}
		}
		p := problem(seen)
		if status == http.StatusOK && p == "" {
			return
		}
		if time.Now().After(end) {
			t.Errorf("order %s: %s (HTTP %d; inventory-service recorded %v)", id, p, status, seen)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// soldUnanswered adds to sold the units of the PAID orders with items
// that the load does not know as accepted (their POST was answered 503),
// read from order-service's database, and returns how many there were.
func (s *System) soldUnanswered(t testing.TB, accepted map[string][]gatewayclient.NewOrderLine, sold map[string]int64) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.OrderDB)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT id::text, items FROM orders WHERE status = 'PAID' AND items IS NOT NULL`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var lines []struct {
			Sku      string `json:"sku"`
			Quantity int64  `json:"quantity"`
		}
		require.NoError(t, rows.Scan(&id, &lines))
		if _, ok := accepted[id]; ok {
			continue
		}
		n++
		for _, l := range lines {
			sold[l.Sku] += l.Quantity
		}
	}
	require.NoError(t, rows.Err())
	return n
}
