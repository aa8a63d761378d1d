package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// CatalogueStock is each product's stock on hand: no step can run out of
// it (an order takes one unit of each of its lines).
const CatalogueStock = 1_000_000_000

// Catalogue is the products the steps with items order from.
type Catalogue struct {
	SKUs []string
}

// NewCatalogue names n products.
func NewCatalogue(n int) Catalogue {
	c := Catalogue{SKUs: make([]string, n)}
	for i := range c.SKUs {
		c.SKUs[i] = fmt.Sprintf("BENCH-%05d", i)
	}
	return c
}

// Order returns a function making the body of an order, of a fresh user,
// with lines distinct products of the catalogue picked at random, one unit
// each: the inventory prices it, then it is paid as any other.
func (c Catalogue) Order(lines int) func() gatewayclient.NewOrder {
	lines = min(lines, len(c.SKUs))
	return func() gatewayclient.NewOrder {
		items := make([]gatewayclient.NewOrderLine, 0, lines)
		for _, j := range rand.Perm(len(c.SKUs))[:lines] {
			items = append(items, gatewayclient.NewOrderLine{Sku: c.SKUs[j], Quantity: 1})
		}
		currency, user := "USD", uuid.New()
		return gatewayclient.NewOrder{UserId: &user, Currency: &currency, Items: &items}
	}
}

// Seed creates the products through the gateway (POST /api/products, a
// command like an order) and waits until inventory-service lists them
// all: the steps with items must find every product. gateway is the
// gateway's client; inventory is the same client pointed at
// inventory-service, whose GET /api/products the gateway forwards as is.
func (c Catalogue) Seed(ctx context.Context, gateway, inventory *gatewayclient.ClientWithResponses) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(c.SKUs) {
					return
				}
				if err := createProduct(ctx, gateway, c.SKUs[i]); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := productCount(ctx, inventory)
		if err == nil && n >= int64(len(c.SKUs)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("catalogue: %d of %d products listed after 60s (%v)", n, len(c.SKUs), err)
		}
		sleepCtx(ctx, 100*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func createProduct(ctx context.Context, gateway *gatewayclient.ClientWithResponses, sku string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := gateway.CreateProductWithResponse(ctx, nil, gatewayclient.NewProduct{
		Sku: sku, Name: "bench product " + sku, Price: int64(100 + len(sku)), Currency: "USD", OnHand: CatalogueStock,
	})
	if err != nil {
		return fmt.Errorf("catalogue: POST /api/products %s: %w", sku, err)
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusAccepted); err != nil {
		return fmt.Errorf("catalogue: %s: %w", sku, err)
	}
	return nil
}

// productCount asks inventory-service how many products it has.
func productCount(ctx context.Context, inventory *gatewayclient.ClientWithResponses) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	limit := 1
	resp, err := inventory.ListProductsWithResponse(ctx, &gatewayclient.ListProductsParams{Limit: &limit})
	if err != nil {
		return 0, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return 0, err
	}
	return resp.JSON200.Meta.Total, nil
}
