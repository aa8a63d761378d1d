package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
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
func (c Catalogue) Order(lines int) func() []byte {
	lines = min(lines, len(c.SKUs))
	return func() []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"userId":%q,"currency":"USD","items":[`, uuid.NewString())
		for i, j := range rand.Perm(len(c.SKUs))[:lines] {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"sku":%q,"quantity":1}`, c.SKUs[j])
		}
		b.WriteString("]}")
		return b.Bytes()
	}
}

// Seed creates the products through the gateway (POST /api/products, a
// command like an order) and waits until inventory-service lists them
// all: the steps with items must find every product.
func (c Catalogue) Seed(ctx context.Context, client *http.Client, gatewayURL, inventoryURL string) error {
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
				if err := createProduct(ctx, client, gatewayURL, c.SKUs[i]); err != nil {
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
		n, err := productCount(ctx, client, inventoryURL)
		if err == nil && n >= len(c.SKUs) {
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

func createProduct(ctx context.Context, client *http.Client, gatewayURL, sku string) error {
	body := fmt.Sprintf(`{"sku":%q,"name":"bench product %s","price":%d,"currency":"USD","onHand":%d}`,
		sku, sku, 100+len(sku), CatalogueStock)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/api/products", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("catalogue: POST /api/products %s: %w", sku, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("catalogue: POST /api/products %s: %s: %.200s", sku, resp.Status, data)
	}
	return nil
}

// productCount asks inventory-service how many products it has.
func productCount(ctx context.Context, client *http.Client, inventoryURL string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, inventoryURL+"/api/products?limit=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var page struct {
		Meta struct {
			Total int `json:"total"`
		} `json:"meta"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /api/products: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, err
	}
	return page.Meta.Total, nil
}
