package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// createOrder places an order with an Idempotency-Key of key ("" for
// none) and returns its id.
func (s *System) createOrder(t testing.TB, body gatewayclient.NewOrder, key string) string {
	t.Helper()
	params := &gatewayclient.CreateOrderParams{}
	if key != "" {
		params.IdempotencyKey = &key
	}
	resp, err := s.API.CreateOrderWithResponse(context.Background(), params, body)
	require.NoError(t, err, "POST /api/orders")
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	a := resp.JSON202
	require.Equal(t, "/api/orders/"+a.OrderId.String(), resp.HTTPResponse.Header.Get("Location"))
	require.Equal(t, gatewayclient.OrderAcceptedStatus("PENDING_PAYMENT"), a.Status)
	require.Equal(t, gatewayclient.OrderAcceptedMessage("Order creation request accepted"), a.Message)
	return a.OrderId.String()
}

// getOrder is GET /api/orders/{id}: the order, and the answer's status.
func (s *System) getOrder(t testing.TB, id string) (gatewayclient.Order, int) {
	t.Helper()
	resp, err := s.API.GetOrderWithResponse(context.Background(), uuidOf(t, id))
	require.NoError(t, err, "GET /api/orders/%s", id)
	if resp.JSON200 == nil {
		return gatewayclient.Order{}, resp.StatusCode()
	}
	return *resp.JSON200, resp.StatusCode()
}

// mustOrder is an order that must be there.
func (s *System) mustOrder(t testing.TB, id string) gatewayclient.Order {
	t.Helper()
	o, status := s.getOrder(t, id)
	require.Equal(t, http.StatusOK, status, "GET /api/orders/%s", id)
	return o
}

// waitOrder polls until the order's status satisfies done, or fails after
// the deadline.
func (s *System) waitOrder(t testing.TB, id string, deadline time.Duration, done func(gatewayclient.Order) bool) gatewayclient.Order {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		o, status := s.getOrder(t, id)
		if status == http.StatusOK && done(o) {
			return o
		}
		if time.Now().After(end) {
			t.Fatalf("order %s: condition not met within %v; last status %q (HTTP %d)", id, deadline, o.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *System) waitStatus(t testing.TB, id, status string) gatewayclient.Order {
	t.Helper()
	return s.waitOrder(t, id, 30*time.Second, func(o gatewayclient.Order) bool { return string(o.Status) == status })
}

// payment is GET /api/payments/order/{orderId}: the order's payment, and
// the answer's status.
func (s *System) payment(t testing.TB, orderID string) (gatewayclient.Payment, int) {
	t.Helper()
	resp, err := s.API.GetPaymentOfOrderWithResponse(context.Background(), uuidOf(t, orderID))
	require.NoError(t, err, "GET /api/payments/order/%s", orderID)
	if resp.JSON200 == nil {
		return gatewayclient.Payment{}, resp.StatusCode()
	}
	return *resp.JSON200, resp.StatusCode()
}

func (s *System) waitPayment(t testing.TB, orderID string, done func(gatewayclient.Payment) bool) gatewayclient.Payment {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		p, status := s.payment(t, orderID)
		if status == http.StatusOK && done(p) {
			return p
		}
		if time.Now().After(end) {
			t.Fatalf("payment of order %s: condition not met; last %+v (HTTP %d)", orderID, p, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paymentIs(status string) func(gatewayclient.Payment) bool {
	return func(p gatewayclient.Payment) bool { return string(p.Status) == status }
}

// cancel is PATCH /api/orders/{id}/cancel; it returns the answer's status.
func (s *System) cancel(t testing.TB, id string) int {
	t.Helper()
	resp, err := s.API.CancelOrderWithResponse(context.Background(), uuidOf(t, id))
	require.NoError(t, err, "PATCH /api/orders/%s/cancel", id)
	return resp.StatusCode()
}

// listOrders is GET /api/orders with params, which must answer 200.
func (s *System) listOrders(t testing.TB, params gatewayclient.ListOrdersParams) gatewayclient.OrderPage {
	t.Helper()
	resp, err := s.API.ListOrdersWithResponse(context.Background(), &params)
	require.NoError(t, err, "GET /api/orders")
	expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
	return *resp.JSON200
}

// timeline is GET /api/orders/{id}/timeline, and the answer's status.
func (s *System) timeline(t testing.TB, id string) (gatewayclient.Timeline, int) {
	t.Helper()
	resp, err := s.API.GetOrderTimelineWithResponse(context.Background(), uuidOf(t, id))
	require.NoError(t, err, "GET /api/orders/%s/timeline", id)
	if resp.JSON200 == nil {
		return gatewayclient.Timeline{}, resp.StatusCode()
	}
	return *resp.JSON200, resp.StatusCode()
}

// mustTimeline is the timeline of an order that must be there.
func (s *System) mustTimeline(t testing.TB, id string) gatewayclient.Timeline {
	t.Helper()
	tl, status := s.timeline(t, id)
	require.Equal(t, http.StatusOK, status, "GET /api/orders/%s/timeline", id)
	return tl
}

func TestSagaOutcomes(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LIMIT": "50000"})
	user := uuid.NewString()

	cases := []struct {
		name          string
		total         int64
		method        string
		orderStatus   string
		cancelReason  string
		paymentStatus string
		paymentReason string
	}{
		{"approved", 4200, "tok_visa", "PAID", "", "APPROVED", ""},
		{"card declined", 4200, "tok_decline", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "CARD_DECLINED"},
		{"insufficient funds", 4200, "tok_insufficient_funds", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "INSUFFICIENT_FUNDS"},
		{"over the limit", 50001, "tok_visa", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "LIMIT_EXCEEDED"},
		{"gateway failure", 4200, "tok_fail", "FAILED", "", "FAILED", "GATEWAY_ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := s.createOrder(t, totalOrder(user, tc.total, tc.method), "")
			o := s.waitStatus(t, id, tc.orderStatus)
			assert.Equal(t, user, o.UserId.String())
			assert.Equal(t, &tc.total, o.Total)
			assert.Equal(t, "USD", o.Currency, "currency defaults to USD")
			if tc.cancelReason == "" {
				assert.Nil(t, o.CancelReason)
			} else if assert.NotNil(t, o.CancelReason) {
				assert.Equal(t, tc.cancelReason, *o.CancelReason)
			}
			p := s.waitPayment(t, id, paymentIs(tc.paymentStatus))
			assert.Equal(t, tc.total, p.Amount)
			if tc.paymentReason != "" && assert.NotNil(t, p.Reason) {
				assert.Equal(t, tc.paymentReason, *p.Reason)
			}
			resp, err := s.API.GetPaymentWithResponse(context.Background(), p.Id)
			require.NoError(t, err)
			expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
			assert.Equal(t, p, *resp.JSON200, "payment by id equals payment by order")
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	// The latency is the window in which the cancellation must travel from
	// the gateway through order-service to payment-service: seconds, for a
	// loaded machine running every service.
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "5s"})
	user := uuid.NewString()

	t.Run("while pending: payment cancelled, never charged", func(t *testing.T) {
		id := s.createOrder(t, totalOrder(user, 1000, ""), "")
		s.waitPayment(t, id, paymentIs("PROCESSING"))
		resp, err := s.API.CancelOrderWithResponse(context.Background(), uuidOf(t, id))
		require.NoError(t, err)
		expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
		assert.Equal(t, gatewayclient.CancelAccepted{OrderId: uuidOf(t, id), Message: "Order cancellation request accepted"}, *resp.JSON202)
		o := s.waitStatus(t, id, "CANCELLED")
		require.NotNil(t, o.CancelReason)
		assert.Equal(t, "USER_REQUESTED", *o.CancelReason)
		s.waitPayment(t, id, paymentIs("CANCELLED"))
	})
	t.Run("after paid: refunded", func(t *testing.T) {
		id := s.createOrder(t, totalOrder(user, 1000, ""), "")
		s.waitStatus(t, id, "PAID")
		resp, err := s.API.ChangeOrderWithResponse(context.Background(), uuidOf(t, id), gatewayclient.StatusChange{Status: "CANCELLED"})
		require.NoError(t, err)
		expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
		s.waitStatus(t, id, "CANCELLED")
		s.waitPayment(t, id, paymentIs("REFUNDED"))
	})
	t.Run("unknown order: 404", func(t *testing.T) {
		resp, err := s.API.CancelOrderWithResponse(context.Background(), uuid.New())
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode())
		assert.Equal(t, "application/problem+json", resp.HTTPResponse.Header.Get("Content-Type"))
	})
	t.Run("final order: 409", func(t *testing.T) {
		id := s.createOrder(t, totalOrder(user, 1000, "tok_fail"), "")
		s.waitStatus(t, id, "FAILED")
		assert.Equal(t, http.StatusConflict, s.cancel(t, id))
		id = s.createOrder(t, totalOrder(user, 1000, "tok_decline"), "")
		s.waitStatus(t, id, "CANCELLED")
		assert.Equal(t, http.StatusConflict, s.cancel(t, id))
	})
}

// TestCancelRacingPayment cancels orders at every moment around the payment
// decision and checks the contract's invariants for each.
func TestCancelRacingPayment(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "300ms"})
	user := uuid.NewString()
	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = s.createOrder(t, totalOrder(user, int64(100+i), ""), "")
		wg.Go(func() {
			// Spread the cancels over 0–600 ms: before, around and after
			// the decision at 300 ms.
			time.Sleep(time.Duration(i*15) * time.Millisecond)
			// An order may be 404 for a moment after its 202 (contract
			// §2: commands are asynchronous), longer on a busy machine:
			// ask again until it exists, within a deadline.
			deadline := time.Now().Add(20 * time.Second)
			status := s.cancel(t, ids[i])
			for status == http.StatusNotFound && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				status = s.cancel(t, ids[i])
			}
			assert.Contains(t, []int{http.StatusAccepted, http.StatusConflict}, status, "cancel %s", ids[i])
		})
	}
	wg.Wait()
	for _, id := range ids {
		o := s.waitOrder(t, id, 30*time.Second, func(o gatewayclient.Order) bool { return o.Status == "CANCELLED" })
		p := s.waitPayment(t, id, func(p gatewayclient.Payment) bool { return p.Status == "CANCELLED" || p.Status == "REFUNDED" })
		assert.Equal(t, "USER_REQUESTED", *o.CancelReason, "order %s", id)
		assert.Contains(t, []gatewayclient.PaymentStatus{"CANCELLED", "REFUNDED"}, p.Status, "no money held for cancelled order %s", id)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	user := uuid.NewString()
	key := "checkout-" + uuid.NewString()
	body := totalOrder(user, 777, "")
	first := s.createOrder(t, body, key)
	s.waitStatus(t, first, "PAID")
	// A replay, even with another body, yields the same order and no second one.
	second := s.createOrder(t, totalOrder(user, 999, ""), key)
	assert.Equal(t, first, second)
	other := s.createOrder(t, body, key+"-other")
	assert.NotEqual(t, first, other)
	s.waitStatus(t, other, "PAID")

	userID := uuidOf(t, user)
	page := s.listOrders(t, gatewayclient.ListOrdersParams{UserId: &userID})
	assert.Equal(t, int64(2), page.Meta.Total, "one order per key")
	o := s.waitStatus(t, first, "PAID")
	assert.Equal(t, int64(777), *o.Total, "the first request's body wins")
}

// TestDuplicateCommandDelivery publishes the same command message three
// times straight to the broker: one order, one payment.
func TestDuplicateCommandDelivery(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	orderID := uuid.New()
	msg, err := events.NewMessage(events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{
		OrderID: orderID, UserID: uuid.New(), Total: 500, Currency: "EUR", PaymentMethod: "tok_visa"}}, orderID.String())
	require.NoError(t, err)
	for range 3 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), events.ExchangeOrderCommands, msg.Type, true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: msg.ID.String(), Type: msg.Type,
			CorrelationId: orderID.String(), Timestamp: time.Now(), AppId: "test", Body: msg.Body,
			Headers: amqp.Table{"x-schema-version": int64(1)},
		})
		require.NoError(t, err)
		require.True(t, dc.Wait(), "broker confirmed the duplicate")
	}
	s.waitStatus(t, orderID.String(), "PAID")
	s.waitPayment(t, orderID.String(), paymentIs("APPROVED"))

	tl := s.mustTimeline(t, orderID.String())
	counts := map[string]int{}
	for _, e := range tl.Events {
		counts[string(e.Service)+" "+e.Type]++
	}
	assert.Equal(t, 1, counts["order-service "+events.TypeOrderCreateRequested], "the command was handled once: %v", counts)
	assert.Equal(t, 1, counts["order-service "+events.TypeOrderCreated], "order.created emitted once: %v", counts)
	assert.Equal(t, 1, counts["payment-service "+events.TypePaymentApproved], "charged once: %v", counts)
}

func TestListsAndStats(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	user := uuid.NewString()
	var ids []string
	for i := range 5 {
		method := "tok_visa"
		if i%2 == 1 {
			method = "tok_decline"
		}
		ids = append(ids, s.createOrder(t, totalOrder(user, int64(100*(i+1)), method), ""))
	}
	for i, id := range ids {
		want := "PAID"
		if i%2 == 1 {
			want = "CANCELLED"
		}
		s.waitStatus(t, id, want)
	}

	pageOf := func(page, limit int) gatewayclient.OrderPage {
		return s.listOrders(t, gatewayclient.ListOrdersParams{Page: &page, Limit: &limit})
	}
	p1 := pageOf(1, 2)
	assert.Equal(t, int64(5), p1.Meta.Total)
	assert.Equal(t, int64(3), p1.Meta.TotalPages)
	assert.Equal(t, 2, p1.Meta.Limit)
	require.Len(t, p1.Data, 2)
	p1b, p2 := pageOf(2, 2), pageOf(3, 2)
	require.Len(t, p2.Data, 1)
	all := append(append(append([]gatewayclient.Order{}, p1.Data...), p1b.Data...), p2.Data...)
	seen := map[string]bool{}
	for i, o := range all {
		seen[o.Id.String()] = true
		if i > 0 {
			prev := all[i-1]
			assert.True(t, prev.CreatedAt.After(o.CreatedAt) || (prev.CreatedAt.Equal(o.CreatedAt) && prev.Id.String() > o.Id.String()),
				"ordered by createdAt desc, then id desc: %s before %s", prev.CreatedAt, o.CreatedAt)
		}
	}
	assert.Len(t, seen, 5, "the three pages hold every order once")
	assert.Empty(t, pageOf(9, 2).Data, "a page past the end is empty")

	userID, paidStatus := uuidOf(t, user), gatewayclient.OrderStatus("PAID")
	paid := s.listOrders(t, gatewayclient.ListOrdersParams{Status: &paidStatus, UserId: &userID})
	assert.Equal(t, int64(3), paid.Meta.Total)
	for _, o := range paid.Data {
		assert.Equal(t, paidStatus, o.Status)
	}
	nobody := uuid.New()
	assert.Equal(t, int64(0), s.listOrders(t, gatewayclient.ListOrdersParams{UserId: &nobody}).Meta.Total)

	// Raw: a typed client cannot send these.
	for _, bad := range []string{"page=0", "limit=101", "limit=abc", "status=SHIPPED", "userId=nope"} {
		resp := s.Do(http.MethodGet, "/api/orders?"+bad, nil, nil, nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}

	declined := gatewayclient.PaymentStatus("DECLINED")
	payments, err := s.API.ListPaymentsWithResponse(context.Background(), &gatewayclient.ListPaymentsParams{Status: &declined})
	require.NoError(t, err)
	expect(t, payments.HTTPResponse, payments.Body, http.StatusOK)
	assert.Equal(t, int64(2), payments.JSON200.Meta.Total)

	stats, err := s.API.GetPaymentStatsWithResponse(context.Background())
	require.NoError(t, err)
	expect(t, stats.HTTPResponse, stats.Body, http.StatusOK)
	got := map[string][2]int64{}
	for _, st := range stats.JSON200.ByStatus {
		got[string(st.Status)] = [2]int64{st.Count, st.TotalAmount}
	}
	assert.Equal(t, [2]int64{3, 100 + 300 + 500}, got["APPROVED"])
	assert.Equal(t, [2]int64{2, 200 + 400}, got["DECLINED"])
	assert.Equal(t, [2]int64{0, 0}, got["REFUNDED"])

	metrics := func(url string) string {
		resp, err := http.Get(url + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	om := metrics(s.OrderURL)
	assert.Contains(t, om, `ordersaga_saga_duration_seconds_count{outcome="PAID"} 3`)
	assert.Contains(t, om, `ordersaga_saga_duration_seconds_count{outcome="CANCELLED"} 2`)
	assert.Contains(t, om, `ordersaga_messages_consumed_total{outcome="ok",queue="order-service.commands",type="order.create.requested"} 5`)
	pm := metrics(s.PaymentURL)
	assert.Contains(t, pm, `ordersaga_payment_outcomes_total{reason="",status="APPROVED"} 3`)
	assert.Contains(t, pm, `ordersaga_payment_outcomes_total{reason="CARD_DECLINED",status="DECLINED"} 2`)

	tl := s.mustTimeline(t, ids[0])
	var seq []string
	for i, e := range tl.Events {
		seq = append(seq, string(e.Service)+" "+e.Type)
		assert.NotEmpty(t, e.MessageId)
		if i > 0 {
			assert.False(t, e.At.Before(tl.Events[i-1].At), "time order")
		}
	}
	assert.Equal(t, []string{
		"order-service order.create.requested",
		"order-service order.created",
		"payment-service order.created",
		"payment-service payment.approved",
		"order-service payment.approved",
		"order-service order.paid",
		"payment-service order.paid",
	}[:6], seq[:min(6, len(seq))], fmt.Sprint(seq))
}
