package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one call to the gateway.
const requestTimeout = 10 * time.Second

// errNotFound is a 404 from the gateway.
var errNotFound = errors.New("not found")

// order and payment are the contract's Order and Payment (§2), as far as
// the demo reads them.
type order struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	CancelReason *string `json:"cancelReason"`
	// Total and Items are §5's: Items is nil for an order placed with a
	// total, and prices are nil until the stock is reserved.
	Total    *int64      `json:"total"`
	Currency string      `json:"currency"`
	Items    []orderLine `json:"items"`
}

// orderLine is a line of an order with items (contract §5).
type orderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice *int64 `json:"unitPrice,omitempty"`
	LineTotal *int64 `json:"lineTotal,omitempty"`
}

// product is the contract's Product (§5), as far as the demo reads it.
type product struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Currency  string `json:"currency"`
	OnHand    int64  `json:"onHand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}

type payment struct {
	ID     string  `json:"id"`
	Status string  `json:"status"`
	Reason *string `json:"reason"`
}

type timelineEntry struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Type      string    `json:"type"`
	MessageID string    `json:"messageId"`
	Detail    string    `json:"detail"`
}

// api is the gateway's public HTTP API, called as one caller: token is
// its bearer token ("" for none, as with AUTH_MODE=off).
type api struct {
	base  string
	http  *http.Client
	token string
	// trace is the trace id of the last answer that named one (the
	// gateway's traceparent header, when it traces), shared by copies.
	trace *atomic.Value
}

// as is the same API called with token.
func (a *api) as(token string) *api {
	c := *a
	c.token = token
	return &c
}

func newAPI(base string) *api {
	return &api{base: base, http: &http.Client{Timeout: requestTimeout}, trace: &atomic.Value{}}
}

// statusError is an answer with an unexpected status; detail comes from
// its problem+json body when there is one.
type statusError struct {
	method, path string
	status       int
	detail       string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.method, e.path, e.status)
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

func (e *statusError) Unwrap() error {
	if e.status == http.StatusNotFound {
		return errNotFound
	}
	return nil
}

// do sends a request and decodes a JSON answer with status want into out.
func (a *api) do(ctx context.Context, method, path string, headers map[string]string, body, out any, want int) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if tp := strings.Split(resp.Header.Get("traceparent"), "-"); len(tp) == 4 {
		a.trace.Store(tp[1])
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var problem struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		_ = json.Unmarshal(data, &problem)
		detail := problem.Detail
		if detail == "" {
			detail = problem.Title
		}
		return &statusError{method: method, path: path, status: resp.StatusCode, detail: detail}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// ready is nil once the gateway's /readyz answers 200, that is once the
// broker and both services are reachable.
func (a *api) ready(ctx context.Context) error {
	return a.do(ctx, http.MethodGet, "/readyz", nil, nil, nil, http.StatusOK)
}

// placeOrder is POST /api/orders, with a total or, if items is not nil,
// with items; it returns the new order's id.
func (a *api) placeOrder(ctx context.Context, userID string, total int64, items []orderLine, method, idempotencyKey string) (string, error) {
	var accepted struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
	body := map[string]any{"userId": userID, "currency": "USD", "paymentMethod": method}
	want := statusPending
	if items != nil {
		body["items"], want = items, statusPendingStock
	} else {
		body["total"] = total
	}
	err := a.do(ctx, http.MethodPost, "/api/orders", map[string]string{"Idempotency-Key": idempotencyKey}, body, &accepted, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	if accepted.OrderID == "" || accepted.Status != want {
		return "", fmt.Errorf("POST /api/orders: answer %+v, want an orderId and %s", accepted, want)
	}
	return accepted.OrderID, nil
}

// probeAuth tells the gateway's AUTH_MODE from an admin-only route asked
// without a token: 401 with required, 200 with off.
func (a *api) probeAuth(ctx context.Context) (required bool, err error) {
	err = a.as("").do(ctx, http.MethodGet, "/api/payments/stats", nil, nil, nil, http.StatusOK)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusUnauthorized {
		return true, nil
	}
	return false, err
}

// login is POST /api/auth/login; it returns the access token.
func (a *api) login(ctx context.Context, email, password string) (string, error) {
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	err := a.do(ctx, http.MethodPost, "/api/auth/login", nil, map[string]string{"email": email, "password": password}, &tok, http.StatusOK)
	if err == nil && tok.AccessToken == "" {
		err = errors.New("POST /api/auth/login: no accessToken in the answer")
	}
	return tok.AccessToken, err
}

// register is POST /api/auth/register; it returns the new user's id.
func (a *api) register(ctx context.Context, email, password, name string) (string, error) {
	var u struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, "/api/auth/register", nil, map[string]string{"email": email, "password": password, "name": name}, &u, http.StatusCreated)
	if err == nil && u.ID == "" {
		err = errors.New("POST /api/auth/register: no id in the answer")
	}
	return u.ID, err
}

// createProduct is POST /api/products with an Idempotency-Key.
func (a *api) createProduct(ctx context.Context, p product, idempotencyKey string) error {
	body := map[string]any{"sku": p.SKU, "name": p.Name, "price": p.Price, "currency": p.Currency, "onHand": p.OnHand}
	return a.do(ctx, http.MethodPost, "/api/products", map[string]string{"Idempotency-Key": idempotencyKey}, body, nil, http.StatusAccepted)
}

// product is GET /api/products/{sku}; errNotFound while the inventory
// does not have it.
func (a *api) product(ctx context.Context, sku string) (product, error) {
	var p product
	err := a.do(ctx, http.MethodGet, "/api/products/"+sku, nil, nil, &p, http.StatusOK)
	return p, err
}

// status is the HTTP status of a request whose answer is not read; it
// shows what a caller may and may not do.
func (a *api) status(ctx context.Context, method, path string) (int, error) {
	err := a.do(ctx, method, path, nil, nil, nil, http.StatusOK)
	var se *statusError
	if errors.As(err, &se) {
		return se.status, nil
	}
	if err != nil {
		return 0, err
	}
	return http.StatusOK, nil
}

// cancel is PATCH /api/orders/{id}/cancel.
func (a *api) cancel(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPatch, "/api/orders/"+id+"/cancel", nil, nil, nil, http.StatusAccepted)
}

func (a *api) order(ctx context.Context, id string) (order, error) {
	var o order
	err := a.do(ctx, http.MethodGet, "/api/orders/"+id, nil, nil, &o, http.StatusOK)
	return o, err
}

// payment returns the payment of an order; errNotFound while it has none.
func (a *api) payment(ctx context.Context, orderID string) (payment, error) {
	var p payment
	err := a.do(ctx, http.MethodGet, "/api/payments/order/"+orderID, nil, nil, &p, http.StatusOK)
	return p, err
}

func (a *api) timeline(ctx context.Context, orderID string) ([]timelineEntry, error) {
	var t struct {
		Events []timelineEntry `json:"events"`
	}
	err := a.do(ctx, http.MethodGet, "/api/orders/"+orderID+"/timeline", nil, nil, &t, http.StatusOK)
	return t.Events, err
}
