package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// productNamespace is the UUID namespace of the ids derived from an
// Idempotency-Key on the product routes. Changing it would apply a
// client's retried adjustment twice: never do.
var productNamespace = uuid.MustParse("5b0f2c1e-7d1a-4c55-9a43-0c6a0d3e9b21")

// maxProductName bounds a product's name, in bytes.
const maxProductName = 200

// CreateProduct publishes the command that creates product p, once the
// broker confirmed it. With an Idempotency-Key the command's message id
// derives from the sku and the key, as an adjustment's does: a replay (the
// same sku and key) is the same command, deduplicated by the inventory's
// inbox, and answered with the same body as the first (contract §2). The
// key names a request for that sku only: with another sku it is another
// product's create, never one dropped as a replay while its 202 named a
// product that would never exist. A second create of a sku, replay or
// not, changes nothing: the first stands (§5).
func (g *Gateway) CreateProduct(ctx context.Context, p events.ProductCreateRequested, key string) error {
	id := events.NewID()
	if key != "" {
		id = uuid.NewSHA1(productNamespace, []byte(events.TypeProductCreateRequested+"\x00"+p.SKU+"\x00"+key))
	}
	msg, err := events.NewMessageWithID(id, p, p.SKU)
	if err != nil {
		return fmt.Errorf("create product %s: %w", p.SKU, err)
	}
	if err := g.publish(ctx, msg); err != nil {
		return fmt.Errorf("create product %s: %w", p.SKU, err)
	}
	return nil
}

// AdjustStock publishes the command that adds delta to sku's stock and
// returns the adjustment's id once the broker confirmed it. The same sku
// and Idempotency-Key always name the same adjustment, applied once.
func (g *Gateway) AdjustStock(ctx context.Context, sku string, delta int64, key string) (uuid.UUID, error) {
	id := events.NewID()
	if key != "" {
		id = uuid.NewSHA1(productNamespace, []byte(events.TypeStockAdjustRequested+"\x00"+sku+"\x00"+key))
	}
	msg, err := events.NewMessageWithID(uuid.NewSHA1(id, []byte(events.TypeStockAdjustRequested)),
		events.StockAdjustRequested{AdjustmentID: id, SKU: sku, Delta: delta}, sku)
	if err != nil {
		return uuid.Nil, fmt.Errorf("adjust stock of %s: %w", sku, err)
	}
	if err := g.publish(ctx, msg); err != nil {
		return id, fmt.Errorf("adjust stock of %s: %w", sku, err)
	}
	return id, nil
}

// productAccepted is the answer to POST /api/products.
type productAccepted struct {
	SKU     string `json:"sku"`
	Message string `json:"message"`
}

// adjustmentAccepted is the answer to POST /api/products/{sku}/stock.
type adjustmentAccepted struct {
	AdjustmentID uuid.UUID `json:"adjustmentId"`
	SKU          string    `json:"sku"`
	Delta        int64     `json:"delta"`
	Message      string    `json:"message"`
}

func (g *Gateway) createProduct(c *gin.Context) {
	p, key, ok := readCommand(g, c, decodeNewProduct)
	if !ok {
		return
	}
	c.Set(correlationKey, p.SKU)
	if err := g.CreateProduct(requestContext(c), p, key); err != nil {
		g.fail(c, err)
		return
	}
	c.Header("Location", "/api/products/"+p.SKU)
	c.JSON(http.StatusAccepted, productAccepted{SKU: p.SKU, Message: "Product creation request accepted"})
}

func (g *Gateway) adjustStock(c *gin.Context) {
	sku, ok := productSKU(c)
	if !ok {
		return
	}
	delta, key, ok := readCommand(g, c, decodeAdjustment)
	if !ok {
		return
	}
	id, err := g.AdjustStock(requestContext(c), sku, delta, key)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Header("Location", "/api/products/"+sku+"/adjustments")
	c.JSON(http.StatusAccepted, adjustmentAccepted{AdjustmentID: id, SKU: sku, Delta: delta, Message: "Stock adjustment request accepted"})
}

func (g *Gateway) listProducts(c *gin.Context) {
	if _, ok := web.ParsePaging(c); !ok {
		return
	}
	g.forwardInventory(c, "/api/products")
}

func (g *Gateway) getProduct(c *gin.Context) {
	sku, ok := productSKU(c)
	if !ok {
		return
	}
	g.forwardInventory(c, "/api/products/"+sku)
}

func (g *Gateway) listAdjustments(c *gin.Context) {
	sku, ok := productSKU(c)
	if !ok {
		return
	}
	if _, ok := web.ParsePaging(c); !ok {
		return
	}
	g.forwardInventory(c, "/api/products/"+sku+"/adjustments")
}

// forwardInventory forwards a product query to inventory-service, or
// answers 503 where it is not a participant.
func (g *Gateway) forwardInventory(c *gin.Context, path string) {
	if g.inventory.base == "" {
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, InventoryService+" is unavailable")
		return
	}
	g.forward(c, g.inventory, path)
}

// productSKU reads the sku of the path (400 when it cannot be one, as a
// path id that is not a UUID) and makes it the request's correlation id.
func productSKU(c *gin.Context) (string, bool) {
	sku := c.Param("sku")
	if !events.IsSKU(sku) {
		web.Fail(c, http.StatusBadRequest, "invalid sku in the path",
			web.FieldError{Field: "sku", Message: "must be 1 to 64 characters from A-Z, a-z, 0-9, ., _ and -"})
		return "", false
	}
	c.Set(correlationKey, sku)
	return sku, true
}

// decodeNewProduct validates the body of POST /api/products.
func decodeNewProduct(body []byte) (events.ProductCreateRequested, error) {
	fields, order, err := decodeObject(body)
	if err != nil {
		return events.ProductCreateRequested{}, err
	}
	var f fieldErrors
	var p events.ProductCreateRequested
	if s, ok := stringField(fields, &f, "sku", true, ""); ok {
		if events.IsSKU(s) {
			p.SKU = s
		} else {
			f.bad("sku", "must be 1 to 64 characters from A-Z, a-z, 0-9, ., _ and -")
		}
	}
	if s, ok := stringField(fields, &f, "name", true, ""); ok {
		if strings.TrimSpace(s) == "" || len(s) > maxProductName {
			f.bad("name", fmt.Sprintf("must be 1 to %d bytes, not only spaces", maxProductName))
		} else {
			p.Name = s
		}
	}
	p.Price = integerField(fields, &f, "price", 1)
	if s, ok := stringField(fields, &f, "currency", true, ""); ok {
		if IsCurrency(s) && events.IsCurrencyCode(s) {
			p.Currency = s
		} else {
			f.bad("currency", "must be a current ISO 4217 currency code, in upper case, such as USD")
		}
	}
	p.OnHand = integerField(fields, &f, "onHand", 0)
	unknownFields(order, &f, "sku", "name", "price", "currency", "onHand")
	return p, f.err()
}

// decodeAdjustment validates the body of POST /api/products/{sku}/stock:
// {"delta": integer ≠ 0}.
func decodeAdjustment(body []byte) (int64, error) {
	fields, order, err := decodeObject(body)
	if err != nil {
		return 0, err
	}
	var f fieldErrors
	var delta int64
	if raw, ok := fields["delta"]; !ok {
		f.bad("delta", "is required")
	} else if kind := jsonKind(raw); kind != "number" {
		f.wrongType("delta", "an integer, not "+kind)
	} else {
		s := string(raw)
		neg := strings.HasPrefix(s, "-")
		n, msg := parseTotal(strings.TrimPrefix(s, "-"))
		switch {
		case msg == "must be greater than 0":
			f.bad("delta", "must not be 0")
		case msg != "":
			f.bad("delta", msg)
		case neg:
			delta = -n
		default:
			delta = n
		}
	}
	unknownFields(order, &f, "delta")
	return delta, f.err()
}

// isZero reports whether the JSON number s is zero, however written (0,
// -0, 0.0, 0e5).
func isZero(s string) bool {
	mantissa, _, _ := strings.Cut(strings.TrimPrefix(s, "-"), "e")
	mantissa, _, _ = strings.Cut(mantissa, "E")
	return strings.Trim(mantissa, "0.") == ""
}

// integerField reads the required integer field name, at least least.
func integerField(fields map[string]json.RawMessage, f *fieldErrors, name string, least int64) int64 {
	raw, ok := fields[name]
	if !ok {
		f.bad(name, "is required")
		return 0
	}
	if kind := jsonKind(raw); kind != "number" {
		f.wrongType(name, "an integer, not "+kind)
		return 0
	}
	s := string(raw)
	if least == 0 && isZero(s) {
		return 0
	}
	n, msg := parseTotal(s)
	if msg == "must be greater than 0" {
		msg = fmt.Sprintf("must be at least %d", least)
	}
	if msg != "" {
		f.bad(name, msg)
		return 0
	}
	return n
}
