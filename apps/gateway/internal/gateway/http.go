package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/web"
)

// MaxBodyBytes is the largest request body the API accepts (64 KiB).
const MaxBodyBytes = 64 << 10

// IdempotencyKeyHeader is the request header that makes POST /api/orders
// idempotent.
const IdempotencyKeyHeader = "Idempotency-Key"

// correlationKey is the gin key the engine's request log reads the order id
// from.
const correlationKey = "correlation_id"

var (
	paymentStatuses = []string{"PROCESSING", "APPROVED", "DECLINED", "FAILED", "CANCELLED", "REFUNDED"}
)

func (g *Gateway) routes(e *gin.Engine) {
	// With AUTH_MODE=required every route of the group but /api/auth/* and
	// /api/openapi.json needs a token; the own* and adminOnly checks act
	// only then, on a customer's requests (contract §7).
	api := e.Group("/api", g.authenticate)
	api.POST("/orders", g.ownNewOrder, g.createOrder)
	api.GET("/orders", g.ownQuery, g.listOrders)
	api.GET("/orders/:id", g.ownOrder("id"), g.getOrder)
	api.PATCH("/orders/:id", g.ownOrder("id"), g.changeOrder)
	api.PATCH("/orders/:id/cancel", g.ownOrder("id"), g.cancelOrder)
	api.GET("/orders/:id/timeline", g.ownOrder("id"), g.timeline)
	api.GET("/orders/:id/events", g.ownOrder("id"), g.orderEvents)
	api.GET("/payments", g.ownQuery, g.listPayments)
	api.GET("/payments/stats", g.adminOnly, g.paymentStats)
	api.GET("/payments/:id", g.ownPayment, g.getPayment)
	api.GET("/payments/order/:orderId", g.ownOrder("orderId"), g.paymentOfOrder)
	g.invoiceRoutes(api)
	// Product writes are an administrator's (contract §7).
	api.POST("/products", g.adminOnly, g.createProduct)
	api.GET("/products", g.listProducts)
	api.GET("/products/:sku", g.getProduct)
	api.POST("/products/:sku/stock", g.adminOnly, g.adjustStock)
	api.GET("/products/:sku/adjustments", g.listAdjustments)
	api.GET("/notifications", g.ownQuery, g.listNotifications)
	api.GET("/openapi.json", openAPI)
	// Accounts are users-service's; it checks the tokens of /api/users*
	// itself, in both modes.
	api.POST("/auth/register", g.proxyUsers)
	api.POST("/auth/login", g.proxyUsers)
	api.GET("/auth/jwks.json", g.proxyUsers)
	api.GET("/users/me", g.proxyUsers)
	api.GET("/users", g.adminOnly, g.proxyUsers)
	api.PATCH("/users/:id", g.adminOnly, g.proxyUsers)

	e.GET("/docs", docsPage)
	e.GET("/docs/", docsPage)
	e.GET("/docs/:file", docsFile)
}

// orderAccepted is the answer to POST /api/orders.
type orderAccepted struct {
	OrderID uuid.UUID `json:"orderId"`
	Status  string    `json:"status"`
	Message string    `json:"message"`
}

// cancelAccepted is the answer to a cancellation.
type cancelAccepted struct {
	OrderID uuid.UUID `json:"orderId"`
	Message string    `json:"message"`
}

func (g *Gateway) createOrder(c *gin.Context) {
	o, key, ok := readCommand(g, c, decodeNewOrder)
	if !ok {
		return
	}
	o.IdempotencyKey = key
	id, err := g.PlaceOrder(requestContext(c), o)
	if id != uuid.Nil {
		c.Set(correlationKey, id.String())
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Header("Location", "/api/orders/"+id.String())
	status := events.StatusPendingPayment
	if o.Items != nil {
		status = events.StatusPendingStock
	}
	c.JSON(http.StatusAccepted, orderAccepted{OrderID: id, Status: status, Message: "Order creation request accepted"})
}

func (g *Gateway) listOrders(c *gin.Context) {
	if _, ok := web.ParseListQuery(c, events.OrderStatuses); !ok {
		return
	}
	g.forward(c, g.orders, "/api/orders")
}

func (g *Gateway) getOrder(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	g.forward(c, g.orders, "/api/orders/"+id.String())
}

// changeOrder is PATCH /api/orders/{id}: {"status": "CANCELLED"} cancels.
func (g *Gateway) changeOrder(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	body, ok := readJSONBody(c)
	if !ok {
		return
	}
	if err := decodeStatusChange(body); err != nil {
		g.fail(c, err)
		return
	}
	g.cancel(c, id)
}

// cancelOrder is PATCH /api/orders/{id}/cancel; its body is ignored.
func (g *Gateway) cancelOrder(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	g.cancel(c, id)
}

func (g *Gateway) cancel(c *gin.Context, id uuid.UUID) {
	if err := g.CancelOrder(requestContext(c), id); err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, cancelAccepted{OrderID: id, Message: "Order cancellation request accepted"})
}

func (g *Gateway) timeline(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	t, err := g.Timeline(requestContext(c), id)
	if err != nil {
		g.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (g *Gateway) listPayments(c *gin.Context) {
	if _, ok := web.ParseListQuery(c, paymentStatuses); !ok {
		return
	}
	g.forward(c, g.payments, "/api/payments")
}

func (g *Gateway) paymentStats(c *gin.Context) {
	g.forward(c, g.payments, "/api/payments/stats")
}

func (g *Gateway) getPayment(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	g.forward(c, g.payments, "/api/payments/"+id.String())
}

func (g *Gateway) paymentOfOrder(c *gin.Context) {
	id, ok := orderID(c, "orderId")
	if !ok {
		return
	}
	g.forward(c, g.payments, "/api/payments/order/"+id.String())
}

// orderID reads an order id from the path and makes it the request's
// correlation id.
func orderID(c *gin.Context, param string) (uuid.UUID, bool) {
	id, ok := web.PathUUID(c, param)
	if ok {
		c.Set(correlationKey, id.String())
	}
	return id, ok
}

// forward answers with what the service answers to GET path and the
// request's query string: status, Content-Type and body.
func (g *Gateway) forward(c *gin.Context, u upstream, path string) {
	resp, err := u.get(requestContext(c), path, c.Request.URL.RawQuery)
	if err != nil {
		g.fail(c, err)
		return
	}
	if resp.contentType == "" {
		c.Status(resp.status)
		_, _ = c.Writer.Write(resp.body)
		return
	}
	c.Data(resp.status, resp.contentType, resp.body)
}

// requestContext is the context of the request, carrying its request id
// for the calls to the services.
func requestContext(c *gin.Context) context.Context {
	return withRequestID(c.Request.Context(), c.GetString(web.RequestIDHeader))
}

// readJSONBody reads a JSON request body of at most MaxBodyBytes. On a
// failure it writes the problem (413, 415 or 400) and returns false.
func readJSONBody(c *gin.Context) ([]byte, bool) {
	tooLarge := func() ([]byte, bool) {
		web.Fail(c, http.StatusRequestEntityTooLarge, "the request body must not exceed 64 KiB")
		return nil, false
	}
	if c.Request.ContentLength > MaxBodyBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tooLarge()
		}
		web.Fail(c, http.StatusBadRequest, "the request body could not be read")
		return nil, false
	}
	mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "application/json" {
		web.Fail(c, http.StatusUnsupportedMediaType, "the request body must be application/json")
		return nil, false
	}
	// JSON is UTF-8 (RFC 8259 §8.1); a body said to be in another charset
	// would be read as something other than what the client meant.
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
		web.Fail(c, http.StatusUnsupportedMediaType, "the request body must be application/json in UTF-8, not "+charset)
		return nil, false
	}
	return body, true
}

// readCommand reads a command: its JSON body (readJSONBody) and its
// Idempotency-Key, in that order, then decodes the body. On a failure it
// writes the problem and returns false.
func readCommand[T any](g *Gateway, c *gin.Context, decode func(body []byte) (T, error)) (cmd T, key string, ok bool) {
	body, ok := readJSONBody(c)
	if !ok {
		return cmd, "", false
	}
	if key, ok = idempotencyKey(c); !ok {
		return cmd, "", false
	}
	cmd, err := decode(body)
	if err != nil {
		g.fail(c, err)
		return cmd, "", false
	}
	return cmd, key, true
}

// idempotencyKey returns the request's Idempotency-Key, "" when there is
// none. An empty, repeated or malformed one is a 400 problem, and false.
func idempotencyKey(c *gin.Context) (string, bool) {
	values, present := c.Request.Header[IdempotencyKeyHeader]
	if !present {
		return "", true
	}
	fail := func(msg string) (string, bool) {
		web.Fail(c, http.StatusBadRequest, "invalid "+IdempotencyKeyHeader+" header",
			web.FieldError{Field: IdempotencyKeyHeader, Message: msg})
		return "", false
	}
	if len(values) != 1 {
		return fail("must be given once")
	}
	key := values[0]
	if len(key) < 1 || len(key) > 255 {
		return fail("must be 1 to 255 characters long")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fail("must contain only visible ASCII characters (0x21 to 0x7E)")
		}
	}
	return key, true
}

// fail maps an error of the gateway to its problem response.
func (g *Gateway) fail(c *gin.Context, err error) {
	var invalid *invalidBody
	var up *upstreamError
	switch {
	case errors.As(err, &invalid):
		web.Fail(c, invalid.Status, invalid.Detail, invalid.Errors...)
		return
	case errors.Is(err, ErrNotFound):
		web.Fail(c, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrConflict):
		// "order … is already CANCELLED", without the sentinel's name.
		web.Fail(c, http.StatusConflict, strings.TrimSuffix(err.Error(), ": "+ErrConflict.Error()))
		return
	case errors.As(err, &up) && up.unavailable():
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, up.service+" is unavailable")
	case errors.As(err, &up):
		web.Fail(c, http.StatusBadGateway, up.service+" failed to answer")
	case errors.Is(err, rabbit.ErrBlocked):
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, "the message broker is blocked by a resource alarm and takes no commands; retry")
	case errors.Is(err, ErrUnavailable):
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, "the message broker is unavailable or did not confirm the command; retry")
	default:
		web.Fail(c, http.StatusInternalServerError, "internal error")
	}
	g.log.WarnContext(c, "request failed", "error", err, "path", c.Request.URL.Path,
		"request_id", c.GetString(web.RequestIDHeader), "correlation_id", c.GetString(correlationKey))
}
