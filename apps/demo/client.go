package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// api is the gateway's public HTTP API.
type api struct {
	base string
	http *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, http: &http.Client{Timeout: requestTimeout}}
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
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
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

// placeOrder is POST /api/orders; it returns the new order's id.
func (a *api) placeOrder(ctx context.Context, userID string, total int64, method, idempotencyKey string) (string, error) {
	var accepted struct {
		OrderID string `json:"orderId"`
		Status  string `json:"status"`
	}
	body := map[string]any{"userId": userID, "total": total, "currency": "USD", "paymentMethod": method}
	err := a.do(ctx, http.MethodPost, "/api/orders", map[string]string{"Idempotency-Key": idempotencyKey}, body, &accepted, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	if accepted.OrderID == "" || accepted.Status != "PENDING_PAYMENT" {
		return "", fmt.Errorf("POST /api/orders: answer %+v, want an orderId and PENDING_PAYMENT", accepted)
	}
	return accepted.OrderID, nil
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
