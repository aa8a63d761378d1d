package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// requestTimeout bounds one call to the gateway.
const requestTimeout = 10 * time.Second

// errNotFound is a 404 from the gateway.
var errNotFound = gatewayclient.ErrNotFound

// statusError is an answer with an unexpected status.
type statusError = gatewayclient.StatusError

// api is the gateway's public HTTP API (the client generated from its
// OpenAPI document), called as one caller: token is its bearer token (""
// for none, as with AUTH_MODE=off).
type api struct {
	base  string
	http  *tracingDoer
	token string
	c     *gatewayclient.ClientWithResponses
}

func newAPI(base string) (*api, error) {
	d := &tracingDoer{http: &http.Client{Timeout: requestTimeout}, trace: &atomic.Value{}}
	c, err := gatewayclient.NewClientWithResponses(base, gatewayclient.WithHTTPClient(d))
	if err != nil {
		return nil, fmt.Errorf("gateway client of %s: %w", base, err)
	}
	return &api{base: base, http: d, c: c}, nil
}

// as is the same API called with token.
func (a *api) as(token string) *api {
	c := *a
	c.token = token
	return &c
}

// trace is the trace id of the last answer that named one (the gateway's
// traceparent header, when it traces), shared by copies.
func (a *api) trace() string {
	tid, _ := a.http.trace.Load().(string)
	return tid
}

// tracingDoer sends requests and keeps the trace id of the last answer
// that had a traceparent header.
type tracingDoer struct {
	http  *http.Client
	trace *atomic.Value
}

func (d *tracingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.http.Do(req)
	if err == nil {
		if tp := strings.Split(resp.Header.Get("traceparent"), "-"); len(tp) == 4 {
			d.trace.Store(tp[1])
		}
	}
	return resp, err
}

// ready is nil once the gateway's /readyz answers 200, that is once the
// broker and both services are reachable. /readyz is operational, not
// part of the API document, so it is a plain GET.
func (a *api) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET /readyz: %w", err)
	}
	defer resp.Body.Close()
	return gatewayclient.Check(resp, nil, http.StatusOK)
}

// parseID is the UUID of an id the gateway gave.
func parseID(id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return u, fmt.Errorf("id %q: %w", id, err)
	}
	return u, nil
}

// placeOrder is POST /api/orders, with a total or, if items is not nil,
// with items; it returns the new order's id.
func (a *api) placeOrder(ctx context.Context, userID string, total int64, items []gatewayclient.NewOrderLine, method, idempotencyKey string) (string, error) {
	user, err := parseID(userID)
	if err != nil {
		return "", err
	}
	currency := "USD"
	body := gatewayclient.NewOrder{UserId: &user, Currency: &currency, PaymentMethod: &method}
	want := gatewayclient.OrderAcceptedStatus(statusPending)
	if items != nil {
		body.Items, want = &items, statusPendingStock
	} else {
		body.Total = &total
	}
	resp, err := a.c.CreateOrderWithResponse(ctx, &gatewayclient.CreateOrderParams{IdempotencyKey: &idempotencyKey}, body, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return "", err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusAccepted); err != nil {
		return "", err
	}
	if accepted := resp.JSON202; accepted.OrderId == uuid.Nil || accepted.Status != want {
		return "", fmt.Errorf("POST /api/orders: answer %+v, want an orderId and %s", *accepted, want)
	}
	return resp.JSON202.OrderId.String(), nil
}

// probeAuth tells the gateway's AUTH_MODE from an admin-only route asked
// without a token: 401 with required, 200 with off.
func (a *api) probeAuth(ctx context.Context) (required bool, err error) {
	resp, err := a.c.GetPaymentStatsWithResponse(ctx)
	if err != nil {
		return false, err
	}
	if resp.StatusCode() == http.StatusUnauthorized {
		return true, nil
	}
	return false, gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK)
}

// login is POST /api/auth/login; it returns the access token.
func (a *api) login(ctx context.Context, email, password string) (string, error) {
	resp, err := a.c.LoginWithResponse(ctx, gatewayclient.Credentials{Email: email, Password: password}, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return "", err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return "", err
	}
	if resp.JSON200.AccessToken == "" {
		return "", errors.New("POST /api/auth/login: no accessToken in the answer")
	}
	return resp.JSON200.AccessToken, nil
}

// register is POST /api/auth/register; it returns the new user's id.
func (a *api) register(ctx context.Context, email, password, name string) (string, error) {
	resp, err := a.c.RegisterWithResponse(ctx, gatewayclient.Registration{Email: gatewayclient.Email(email), Password: password, Name: name}, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return "", err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusCreated); err != nil {
		return "", err
	}
	if resp.JSON201.Id == uuid.Nil {
		return "", errors.New("POST /api/auth/register: no id in the answer")
	}
	return resp.JSON201.Id.String(), nil
}

// createProduct is POST /api/products with an Idempotency-Key.
func (a *api) createProduct(ctx context.Context, p gatewayclient.NewProduct, idempotencyKey string) error {
	resp, err := a.c.CreateProductWithResponse(ctx, &gatewayclient.CreateProductParams{IdempotencyKey: &idempotencyKey}, p, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return err
	}
	return gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusAccepted)
}

// product is GET /api/products/{sku}; errNotFound while the inventory
// does not have it.
func (a *api) product(ctx context.Context, sku string) (gatewayclient.Product, error) {
	resp, err := a.c.GetProductWithResponse(ctx, sku, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return gatewayclient.Product{}, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return gatewayclient.Product{}, err
	}
	return *resp.JSON200, nil
}

// cancel is PATCH /api/orders/{id}/cancel.
func (a *api) cancel(ctx context.Context, id string) error {
	resp, err := a.cancelOrder(ctx, id)
	if err != nil {
		return err
	}
	return gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusAccepted)
}

// cancelOrder is PATCH /api/orders/{id}/cancel, whatever its answer.
func (a *api) cancelOrder(ctx context.Context, id string) (*gatewayclient.CancelOrderResponse, error) {
	u, err := parseID(id)
	if err != nil {
		return nil, err
	}
	return a.c.CancelOrderWithResponse(ctx, u, gatewayclient.BearerAuth(a.token))
}

func (a *api) order(ctx context.Context, id string) (gatewayclient.Order, error) {
	resp, err := a.getOrder(ctx, id)
	if err != nil {
		return gatewayclient.Order{}, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return gatewayclient.Order{}, err
	}
	return *resp.JSON200, nil
}

// getOrder is GET /api/orders/{id}, whatever its answer.
func (a *api) getOrder(ctx context.Context, id string) (*gatewayclient.GetOrderResponse, error) {
	u, err := parseID(id)
	if err != nil {
		return nil, err
	}
	return a.c.GetOrderWithResponse(ctx, u, gatewayclient.BearerAuth(a.token))
}

// payment returns the payment of an order; errNotFound while it has none.
func (a *api) payment(ctx context.Context, orderID string) (gatewayclient.Payment, error) {
	u, err := parseID(orderID)
	if err != nil {
		return gatewayclient.Payment{}, err
	}
	resp, err := a.c.GetPaymentOfOrderWithResponse(ctx, u, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return gatewayclient.Payment{}, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return gatewayclient.Payment{}, err
	}
	return *resp.JSON200, nil
}

func (a *api) timeline(ctx context.Context, orderID string) ([]gatewayclient.TimelineEvent, error) {
	u, err := parseID(orderID)
	if err != nil {
		return nil, err
	}
	resp, err := a.c.GetOrderTimelineWithResponse(ctx, u, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return nil, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return resp.JSON200.Events, nil
}

// invoiceOfOrder is GET /api/orders/{id}/invoice; errNotFound while the
// order has none.
func (a *api) invoiceOfOrder(ctx context.Context, orderID string) (gatewayclient.Invoice, error) {
	u, err := parseID(orderID)
	if err != nil {
		return gatewayclient.Invoice{}, err
	}
	resp, err := a.c.GetInvoiceOfOrderWithResponse(ctx, u, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return gatewayclient.Invoice{}, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return gatewayclient.Invoice{}, err
	}
	return *resp.JSON200, nil
}

// notifications is GET /api/notifications?orderId=.
func (a *api) notifications(ctx context.Context, orderID string) ([]gatewayclient.Notification, error) {
	u, err := parseID(orderID)
	if err != nil {
		return nil, err
	}
	resp, err := a.c.ListNotificationsWithResponse(ctx, &gatewayclient.ListNotificationsParams{OrderId: &u}, gatewayclient.BearerAuth(a.token))
	if err != nil {
		return nil, err
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return resp.JSON200.Data, nil
}
