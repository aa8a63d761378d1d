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
)

type order struct {
	ID           string  `json:"id"`
	UserID       string  `json:"userId"`
	Total        int64   `json:"total"`
	Currency     string  `json:"currency"`
	Status       string  `json:"status"`
	CancelReason *string `json:"cancelReason"`
	CreatedAt    string  `json:"createdAt"`
	UpdatedAt    string  `json:"updatedAt"`
}

type payment struct {
	ID       string  `json:"id"`
	OrderID  string  `json:"orderId"`
	Amount   int64   `json:"amount"`
	Currency string  `json:"currency"`
	Status   string  `json:"status"`
	Reason   *string `json:"reason"`
}

type accepted struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (s *System) createOrder(t testing.TB, body map[string]any, headers map[string]string) string {
	t.Helper()
	var a accepted
	resp := s.Do(http.MethodPost, "/api/orders", body, headers, &a)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /api/orders")
	require.Equal(t, "/api/orders/"+a.OrderID, resp.Header.Get("Location"))
	require.Equal(t, "PENDING_PAYMENT", a.Status)
	require.Equal(t, "Order creation request accepted", a.Message)
	return a.OrderID
}

// waitOrder polls until the order's status satisfies done, or fails after
// the deadline.
func (s *System) waitOrder(t testing.TB, id string, deadline time.Duration, done func(order) bool) order {
	t.Helper()
	end := time.Now().Add(deadline)
	var o order
	for {
		o = order{}
		resp := s.Do(http.MethodGet, "/api/orders/"+id, nil, nil, &o)
		if resp.StatusCode == http.StatusOK && done(o) {
			return o
		}
		if time.Now().After(end) {
			t.Fatalf("order %s: condition not met within %v; last status %q (HTTP %d)", id, deadline, o.Status, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *System) waitStatus(t testing.TB, id, status string) order {
	t.Helper()
	return s.waitOrder(t, id, 30*time.Second, func(o order) bool { return o.Status == status })
}

func (s *System) waitPayment(t testing.TB, orderID string, done func(payment) bool) payment {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		var p payment
		resp := s.Do(http.MethodGet, "/api/payments/order/"+orderID, nil, nil, &p)
		if resp.StatusCode == http.StatusOK && done(p) {
			return p
		}
		if time.Now().After(end) {
			t.Fatalf("payment of order %s: condition not met; last %+v (HTTP %d)", orderID, p, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paymentIs(status string) func(payment) bool {
	return func(p payment) bool { return p.Status == status }
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
			id := s.createOrder(t, map[string]any{"userId": user, "total": tc.total, "paymentMethod": tc.method}, nil)
			o := s.waitStatus(t, id, tc.orderStatus)
			assert.Equal(t, user, o.UserID)
			assert.Equal(t, tc.total, o.Total)
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
			var byID payment
			resp := s.Do(http.MethodGet, "/api/payments/"+p.ID, nil, nil, &byID)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, p, byID, "payment by id equals payment by order")
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "1s"})
	user := uuid.NewString()

	t.Run("while pending: payment cancelled, never charged", func(t *testing.T) {
		id := s.createOrder(t, map[string]any{"userId": user, "total": 1000}, nil)
		s.waitPayment(t, id, paymentIs("PROCESSING"))
		var a map[string]string
		resp := s.Do(http.MethodPatch, "/api/orders/"+id+"/cancel", nil, nil, &a)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, map[string]string{"orderId": id, "message": "Order cancellation request accepted"}, a)
		o := s.waitStatus(t, id, "CANCELLED")
		require.NotNil(t, o.CancelReason)
		assert.Equal(t, "USER_REQUESTED", *o.CancelReason)
		s.waitPayment(t, id, paymentIs("CANCELLED"))
	})
	t.Run("after paid: refunded", func(t *testing.T) {
		id := s.createOrder(t, map[string]any{"userId": user, "total": 1000}, nil)
		s.waitStatus(t, id, "PAID")
		resp := s.Do(http.MethodPatch, "/api/orders/"+id, map[string]string{"status": "CANCELLED"}, nil, nil)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		s.waitStatus(t, id, "CANCELLED")
		s.waitPayment(t, id, paymentIs("REFUNDED"))
	})
	t.Run("unknown order: 404", func(t *testing.T) {
		resp := s.Do(http.MethodPatch, "/api/orders/"+uuid.NewString()+"/cancel", nil, nil, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	})
	t.Run("final order: 409", func(t *testing.T) {
		id := s.createOrder(t, map[string]any{"userId": user, "total": 1000, "paymentMethod": "tok_fail"}, nil)
		s.waitStatus(t, id, "FAILED")
		resp := s.Do(http.MethodPatch, "/api/orders/"+id+"/cancel", nil, nil, nil)
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
		id = s.createOrder(t, map[string]any{"userId": user, "total": 1000, "paymentMethod": "tok_decline"}, nil)
		s.waitStatus(t, id, "CANCELLED")
		resp = s.Do(http.MethodPatch, "/api/orders/"+id+"/cancel", nil, nil, nil)
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
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
		ids[i] = s.createOrder(t, map[string]any{"userId": user, "total": 100 + i}, nil)
		wg.Go(func() {
			// Spread the cancels over 0–600 ms: before, around and after
			// the decision at 300 ms.
			time.Sleep(time.Duration(i*15) * time.Millisecond)
			// An order may be 404 for a moment after its 202 (contract
			// §2: commands are asynchronous), longer on a busy machine:
			// ask again until it exists, within a deadline.
			deadline := time.Now().Add(20 * time.Second)
			resp := s.Do(http.MethodPatch, "/api/orders/"+ids[i]+"/cancel", nil, nil, nil)
			for resp.StatusCode == http.StatusNotFound && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				resp = s.Do(http.MethodPatch, "/api/orders/"+ids[i]+"/cancel", nil, nil, nil)
			}
			assert.Contains(t, []int{http.StatusAccepted, http.StatusConflict}, resp.StatusCode, "cancel %s", ids[i])
		})
	}
	wg.Wait()
	for _, id := range ids {
		o := s.waitOrder(t, id, 30*time.Second, func(o order) bool { return o.Status == "CANCELLED" })
		p := s.waitPayment(t, id, func(p payment) bool { return p.Status == "CANCELLED" || p.Status == "REFUNDED" })
		assert.Equal(t, "USER_REQUESTED", *o.CancelReason, "order %s", id)
		assert.Contains(t, []string{"CANCELLED", "REFUNDED"}, p.Status, "no money held for cancelled order %s", id)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	user := uuid.NewString()
	key := "checkout-" + uuid.NewString()
	body := map[string]any{"userId": user, "total": 777}
	first := s.createOrder(t, body, map[string]string{"Idempotency-Key": key})
	s.waitStatus(t, first, "PAID")
	// A replay, even with another body, yields the same order and no second one.
	second := s.createOrder(t, map[string]any{"userId": user, "total": 999}, map[string]string{"Idempotency-Key": key})
	assert.Equal(t, first, second)
	other := s.createOrder(t, body, map[string]string{"Idempotency-Key": key + "-other"})
	assert.NotEqual(t, first, other)
	s.waitStatus(t, other, "PAID")

	var page struct {
		Data []order `json:"data"`
		Meta struct {
			Total int64 `json:"total"`
		} `json:"meta"`
	}
	resp := s.Do(http.MethodGet, "/api/orders?userId="+user, nil, nil, &page)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int64(2), page.Meta.Total, "one order per key")
	o := s.waitStatus(t, first, "PAID")
	assert.Equal(t, int64(777), o.Total, "the first request's body wins")
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

	var tl struct {
		Events []struct {
			Service string `json:"service"`
			Type    string `json:"type"`
		} `json:"events"`
	}
	resp := s.Do(http.MethodGet, "/api/orders/"+orderID.String()+"/timeline", nil, nil, &tl)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	counts := map[string]int{}
	for _, e := range tl.Events {
		counts[e.Service+" "+e.Type]++
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
		ids = append(ids, s.createOrder(t, map[string]any{"userId": user, "total": 100 * (i + 1), "paymentMethod": method}, nil))
	}
	for i, id := range ids {
		want := "PAID"
		if i%2 == 1 {
			want = "CANCELLED"
		}
		s.waitStatus(t, id, want)
	}

	type page struct {
		Data []order `json:"data"`
		Meta struct {
			Page       int   `json:"page"`
			Limit      int   `json:"limit"`
			Total      int64 `json:"total"`
			TotalPages int64 `json:"totalPages"`
		} `json:"meta"`
	}
	var p1, p2, p3 page
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?page=1&limit=2", nil, nil, &p1).StatusCode)
	assert.Equal(t, int64(5), p1.Meta.Total)
	assert.Equal(t, int64(3), p1.Meta.TotalPages)
	assert.Equal(t, 2, p1.Meta.Limit)
	require.Len(t, p1.Data, 2)
	var p1b page
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?page=2&limit=2", nil, nil, &p1b).StatusCode)
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?page=3&limit=2", nil, nil, &p2).StatusCode)
	require.Len(t, p2.Data, 1)
	all := append(append(append([]order{}, p1.Data...), p1b.Data...), p2.Data...)
	seen := map[string]bool{}
	for i, o := range all {
		seen[o.ID] = true
		if i > 0 {
			prev := all[i-1]
			assert.True(t, prev.CreatedAt > o.CreatedAt || (prev.CreatedAt == o.CreatedAt && prev.ID > o.ID),
				"ordered by createdAt desc, then id desc: %s before %s", prev.CreatedAt, o.CreatedAt)
		}
	}
	assert.Len(t, seen, 5, "the three pages hold every order once")
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?page=9&limit=2", nil, nil, &p3).StatusCode)
	assert.Empty(t, p3.Data, "a page past the end is empty")

	var paid page
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?status=PAID&userId="+user, nil, nil, &paid).StatusCode)
	assert.Equal(t, int64(3), paid.Meta.Total)
	for _, o := range paid.Data {
		assert.Equal(t, "PAID", o.Status)
	}
	var none page
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders?userId="+uuid.NewString(), nil, nil, &none).StatusCode)
	assert.Equal(t, int64(0), none.Meta.Total)

	for _, bad := range []string{"page=0", "limit=101", "limit=abc", "status=SHIPPED", "userId=nope"} {
		resp := s.Do(http.MethodGet, "/api/orders?"+bad, nil, nil, nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}

	var payments struct {
		Data []payment `json:"data"`
		Meta struct {
			Total int64 `json:"total"`
		} `json:"meta"`
	}
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/payments?status=DECLINED", nil, nil, &payments).StatusCode)
	assert.Equal(t, int64(2), payments.Meta.Total)

	var stats struct {
		ByStatus []struct {
			Status      string `json:"status"`
			Count       int64  `json:"count"`
			TotalAmount int64  `json:"totalAmount"`
		} `json:"byStatus"`
	}
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/payments/stats", nil, nil, &stats).StatusCode)
	got := map[string][2]int64{}
	for _, st := range stats.ByStatus {
		got[st.Status] = [2]int64{st.Count, st.TotalAmount}
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

	var tl struct {
		OrderID string `json:"orderId"`
		Events  []struct {
			At        time.Time `json:"at"`
			Service   string    `json:"service"`
			Type      string    `json:"type"`
			MessageID string    `json:"messageId"`
			Detail    string    `json:"detail"`
		} `json:"events"`
	}
	require.Equal(t, http.StatusOK, s.Do(http.MethodGet, "/api/orders/"+ids[0]+"/timeline", nil, nil, &tl).StatusCode)
	var seq []string
	for i, e := range tl.Events {
		seq = append(seq, e.Service+" "+e.Type)
		assert.NotEmpty(t, e.MessageID)
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
