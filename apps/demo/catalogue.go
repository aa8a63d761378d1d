package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// catalogue is the demo's seed catalogue. Each product is created once
// (Idempotency-Key per sku, and the inventory keeps the first create of a
// sku), so seeding again never resets its stock: the walkthrough reads the
// stock it finds. The poster is the limited edition the out-of-stock order
// asks one too many of.
var catalogue = []gatewayclient.NewProduct{
	{Sku: "DEMO-MUG", Name: "Saga mug", Price: 1250, Currency: "USD", OnHand: 1000},
	{Sku: "DEMO-TEE", Name: "Outbox T-shirt", Price: 2400, Currency: "USD", OnHand: 1000},
	{Sku: "DEMO-CAP", Name: "Retry-tier cap", Price: 1800, Currency: "USD", OnHand: 1000},
	{Sku: "DEMO-POSTER", Name: "Dead-letter poster (signed, limited)", Price: 9900, Currency: "USD", OnHand: 3},
}

const (
	skuMug, skuTee, skuCap, skuPoster = "DEMO-MUG", "DEMO-TEE", "DEMO-CAP", "DEMO-POSTER"
	// maxQuantity is the largest quantity of an order line (contract §5).
	maxQuantity = 1000
	// seedTimeout bounds the wait for the inventory to have the products.
	seedTimeout = 30 * time.Second
)

// seed creates the catalogue's products as the administrator (anyone with
// AUTH_MODE=off) and waits until the inventory has every one. A 503 (no
// broker confirm) is retried with the same key.
func (d *demo) seed(ctx context.Context) ([]gatewayclient.Product, error) {
	for _, p := range catalogue {
		err := poll(ctx, existTimeout, func() (bool, error) {
			err := d.admin.createProduct(ctx, p, "demo-seed-"+p.Sku)
			var se *statusError
			if errors.As(err, &se) && se.Status == http.StatusServiceUnavailable {
				return false, err
			}
			return true, err
		})
		if err != nil {
			return nil, fmt.Errorf("seed product %s: %w", p.Sku, err)
		}
	}
	seeded := make([]gatewayclient.Product, len(catalogue))
	for i, c := range catalogue {
		err := poll(ctx, seedTimeout, func() (bool, error) {
			var err error
			seeded[i], err = d.admin.product(ctx, c.Sku)
			if errors.Is(err, errNotFound) {
				return false, err
			}
			return true, err
		})
		if err != nil {
			return nil, fmt.Errorf("product %s not in the inventory within %s: %w", c.Sku, seedTimeout, err)
		}
	}
	return seeded, nil
}

// writeCatalogue prints the products as a table.
func writeCatalogue(d *demo, products []gatewayclient.Product) error {
	tw := tabwriter.NewWriter(d.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    SKU\tNAME\tPRICE\tON HAND\tRESERVED\tAVAILABLE")
	for _, p := range products {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%d\t%d\t%d\n", p.Sku, p.Name, money(p.Price, p.Currency), p.OnHand, p.Reserved, p.Available)
	}
	return tw.Flush()
}

// itemScenarios are the sagas of orders with items, from the stock found:
// the out-of-stock order asks one more poster than there is.
func itemScenarios(stock map[string]gatewayclient.Product) ([]scenario, error) {
	poster := stock[skuPoster]
	if poster.Available >= maxQuantity {
		return nil, fmt.Errorf("%s has %d available: an order line cannot exceed it (at most %d), restock it lower", skuPoster, poster.Available, maxQuantity)
	}
	for _, need := range []struct {
		sku string
		n   int64
	}{{skuMug, 2}, {skuTee, 1}, {skuCap, 3}} {
		if stock[need.sku].Available < need.n {
			return nil, fmt.Errorf("%s has %d available, the demo needs %d: restock it (POST /api/products/%s/stock as an admin)",
				need.sku, stock[need.sku].Available, need.n, need.sku)
		}
	}
	return []scenario{
		{Name: "items-paid", Method: "tok_visa", Story: "2 mugs and a T-shirt, priced by the inventory",
			Items: []gatewayclient.NewOrderLine{{Sku: skuMug, Quantity: 2}, {Sku: skuTee, Quantity: 1}},
			Want:  outcome{statusPaid, "", []string{paymentApproved}}},
		{Name: "out-of-stock", Method: "tok_visa", Story: fmt.Sprintf("%d posters of %d left", poster.Available+1, poster.Available),
			Items: []gatewayclient.NewOrderLine{{Sku: skuPoster, Quantity: int(poster.Available) + 1}},
			Want:  outcome{statusCancelled, reasonOutOfStock, []string{noPayment}}},
		{Name: "items-cancel", Method: "tok_visa", Story: "3 caps, cancelled once PAID: the caps go back on hand",
			Items:  []gatewayclient.NewOrderLine{{Sku: skuCap, Quantity: 3}},
			Cancel: cancelOncePaid, Want: outcome{statusCancelled, reasonUserRequested, []string{paymentRefunded}}},
	}, nil
}

// money is an amount in minor units: "12.50 USD".
func money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency)
}

// stockLine is a product's stock in a few words.
func stockLine(p gatewayclient.Product) string {
	return fmt.Sprintf("onHand %d, reserved %d, available %d", p.OnHand, p.Reserved, p.Available)
}

// writeItems prints an order's lines with their prices and its total.
func writeItems(d *demo, t *tracked) {
	o := t.Order
	d.out.printf("\n  %s · order %s · %s\n", t.Name, t.ID, state(o, t.Payment))
	var lines []gatewayclient.OrderLine // none for an order placed with a total
	if o.Items != nil {
		lines = *o.Items
	}
	for _, l := range lines {
		unit, line := "-", "-"
		if l.UnitPrice != nil {
			unit = money(*l.UnitPrice, o.Currency)
		}
		if l.LineTotal != nil {
			line = money(*l.LineTotal, o.Currency)
		}
		d.out.printf("    %-12s × %-4d at %12s  = %12s\n", l.Sku, l.Quantity, unit, line)
	}
	total := "none (no stock reserved)"
	if o.Total != nil {
		total = money(*o.Total, o.Currency)
	}
	d.out.printf("    %-12s %32s\n", "total", total)
}

// waitStockBack waits until the product of a cancelled PAID order has its
// units back on hand, as before the order, and says so in t.
func (d *demo) waitStockBack(ctx context.Context, t *tracked) {
	if t.StockBefore == nil || !t.OK() {
		return
	}
	before := *t.StockBefore
	var p gatewayclient.Product
	err := poll(ctx, timelineTimeout, func() (bool, error) {
		var err error
		p, err = d.api.product(ctx, before.Sku)
		return err == nil && p.OnHand == before.OnHand && p.Reserved == before.Reserved, err
	})
	t.StockAfter = &p
	if err != nil {
		t.Failure = fmt.Sprintf("%s did not get its units back: before %s, now %s (%v)", before.Sku, stockLine(before), stockLine(p), err)
	}
}

// writeStockStory prints a product before, while and after an order that
// was paid, then cancelled.
func writeStockStory(d *demo, t *tracked) {
	if t.StockBefore == nil {
		return
	}
	d.out.printf("\n  %s · %s, before, while PAID and after the cancel (GET /api/products/%s)\n", t.Name, t.StockBefore.Sku, t.StockBefore.Sku)
	d.out.printf("    before the order        %s\n", stockLine(*t.StockBefore))
	if t.StockPaid != nil {
		d.out.printf("    PAID (units sold)       %s\n", stockLine(*t.StockPaid))
	}
	if t.StockAfter != nil {
		d.out.printf("    cancelled (returned)    %s\n", stockLine(*t.StockAfter))
	}
}

// runSeed is -seed-only: it seeds the catalogue and prints it, as the
// administrator where the gateway needs tokens.
func runSeed(ctx context.Context, cfg config, stdout io.Writer) error {
	gateway, err := newAPI(cfg.GatewayURL)
	if err != nil {
		return err
	}
	d := &demo{cfg: cfg, api: gateway, out: &console{w: stdout}}
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	if err := d.logIn(ctx); err != nil {
		return err
	}
	products, err := d.seed(ctx)
	if err != nil {
		return err
	}
	d.out.printf("demo: the catalogue is seeded (GET %s/api/products)\n", cfg.GatewayURL)
	return writeCatalogue(d, products)
}
