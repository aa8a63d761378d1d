package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"
)

// checkInvariants waits for every order to reach a final status within
// deadline and checks contract §3's invariants for each, and §9's for
// their invoices.
func (s *System) checkInvariants(t testing.TB, ids []string, deadline time.Duration) map[string]int {
	t.Helper()
	outcomes := map[string]int{}
	ends := map[string]orderEnd{}
	end := time.Now().Add(deadline)
	for _, id := range ids {
		o := s.waitOrder(t, id, time.Until(end), func(o gatewayclient.Order) bool {
			return o.Status == "PAID" || o.Status == "CANCELLED" || o.Status == "FAILED"
		})
		orderStatus := string(o.Status)
		p, status := s.payment(t, id)
		// The payment side may still be compensating: wait for it too.
		for status == http.StatusOK && !settled(orderStatus, string(p.Status)) && time.Now().Before(end) {
			time.Sleep(50 * time.Millisecond)
			p, status = s.payment(t, id)
		}
		paymentStatus := string(p.Status)
		switch orderStatus {
		case "PAID":
			assert.Equal(t, http.StatusOK, status, "PAID order %s has a payment", id)
			assert.Equal(t, "APPROVED", paymentStatus, "PAID ⇔ payment APPROVED (order %s)", id)
		case "CANCELLED":
			if status == http.StatusOK {
				assert.Contains(t, []string{"CANCELLED", "DECLINED", "FAILED", "REFUNDED"}, paymentStatus,
					"CANCELLED ⇒ no money held (order %s)", id)
			} else {
				assert.Equal(t, http.StatusNotFound, status)
			}
		case "FAILED":
			assert.Equal(t, "FAILED", paymentStatus, "FAILED ⇒ payment FAILED (order %s)", id)
		}
		outcomes[orderStatus+"/"+paymentStatus]++
		ends[id] = orderEnd{status: orderStatus, payment: p}
	}
	// Contract §9: the invoices of the orders that were paid.
	s.checkInvoices(t, ends, end)
	return outcomes
}

func settled(orderStatus, paymentStatus string) bool {
	switch orderStatus {
	case "PAID":
		return paymentStatus == "APPROVED"
	case "CANCELLED":
		return paymentStatus != "PROCESSING" && paymentStatus != "APPROVED"
	case "FAILED":
		return paymentStatus == "FAILED"
	}
	return false
}

// TestPaymentTimeout: with the payment service down, an order times out.
// When the payment service comes back it finds order.created and
// order.cancelled waiting and handles them concurrently: the payment is
// either approved late and refunded, or cancelled before it was charged.
func TestPaymentTimeout(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"ORDER_PAYMENT_TIMEOUT": "1s"})
	s.Stop("payment-service")
	id := s.createOrder(t, totalOrder(uuid.NewString(), 300, ""), "")
	o := s.waitStatus(t, id, "CANCELLED")
	require.NotNil(t, o.CancelReason)
	assert.Equal(t, "PAYMENT_TIMEOUT", *o.CancelReason)

	s.StartService("payment-service")
	p := s.waitPayment(t, id, func(p gatewayclient.Payment) bool { return p.Status == "REFUNDED" || p.Status == "CANCELLED" })
	t.Logf("payment of the timed-out order ended %s", p.Status)
	s.checkInvariants(t, []string{id}, 30*time.Second)
}

// TestServiceKilledMidFlow SIGKILLs the payment service while payments wait
// for the gateway, the inventory while reservations and commits are in
// flight, and the order service while results arrive; each is restarted.
func TestServiceKilledMidFlow(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "300ms"})
	n := max(30, chaosOrders()/4)
	c := s.newCatalogue(t, n)
	var r loadResult
	for i := range n {
		r.add(c.place(t, s, i))
		switch i {
		case n / 3:
			s.Kill("payment-service")
			s.StartService("payment-service")
		case n / 2:
			c.adjust(s)
			s.Kill(inventoryService)
			s.StartService(inventoryService)
		case 2 * n / 3:
			s.Kill("order-service")
			s.StartService("order-service")
		}
	}
	r.lastPOST = time.Now()
	s.report(t, "services killed mid-flow", c, r)
}

// TestBrokerConnectionsDropped closes every connection of the vhost twice
// while orders flow; every accepted order ends as the contract says.
func TestBrokerConnectionsDropped(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	// The POSTs below run as fast as the gateway answers, for about four
	// seconds: the stock is sized for at most this many.
	const most = 1000
	c := s.newCatalogue(t, most)
	var (
		mu      sync.Mutex
		got     loadResult
		refused int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range most {
			select {
			case <-stop:
				return
			default:
			}
			body, lines := c.order(i)
			resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, body)
			mu.Lock()
			switch {
			case err != nil:
				t.Errorf("POST during broker faults: %v", err)
			case resp.StatusCode() == http.StatusAccepted:
				got.add(resp.JSON202.OrderId.String(), lines)
			case resp.StatusCode() == http.StatusServiceUnavailable:
				refused++
			default:
				t.Errorf("POST during broker faults: HTTP %d", resp.StatusCode())
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	for range 2 {
		time.Sleep(500 * time.Millisecond)
		n := dropConnections(t, s.Broker)
		assert.Positive(t, n, "connections dropped")
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	got.refused, got.lastPOST = refused, time.Now()
	s.report(t, "broker connections dropped", c, got)
}

// dropConnections closes every client connection of the test's vhost
// through the management API and returns how many it closed.
func dropConnections(t testing.TB, b testinfra.Broker) int {
	t.Helper()
	api, err := mgmt.New(b.ManagementURL)
	require.NoError(t, err)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var conns []struct {
			Name string `json:"name"`
		}
		require.NoError(t, api.Do(ctx, http.MethodGet, "/api/vhosts/"+url.PathEscape(b.VHost)+"/connections", nil, &conns))
		// The management API learns of connections with a delay.
		if len(conns) < 3 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for _, c := range conns {
			require.NoError(t, api.Do(ctx, http.MethodDelete, "/api/connections/"+url.PathEscape(c.Name), nil, nil))
		}
		return len(conns)
	}
}

// TestPoisonMessagesAreDeadLettered injects messages that can never succeed
// among real orders: they land in the dead-letter queue with a reason and
// the orders behind them are unaffected.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)

	poison := []amqp.Publishing{
		{MessageId: "not-json", Type: events.TypeOrderCreateRequested, Body: []byte("{oops")},
		{MessageId: "bad-payload", Type: events.TypeOrderCreateRequested, Body: []byte(`{"orderId":"` + uuid.NewString() + `","total":-5}`)},
		{MessageId: "unknown-type", Type: "order.teleport.requested", Body: []byte(`{}`)},
		{Type: events.TypeOrderCreateRequested, Body: []byte(`{}`)}, // no message_id
	}
	var ids []string
	for i, p := range poison {
		key := events.TypeOrderCreateRequested
		require.NoError(t, ch.Publish(events.ExchangeOrderCommands, key, false, false, p), "poison %d", i)
		ids = append(ids, s.createOrder(t, totalOrder(uuid.NewString(), 100, ""), ""))
	}
	outcomes := s.checkInvariants(t, ids, 30*time.Second)
	assert.Equal(t, map[string]int{"PAID/APPROVED": len(ids)}, outcomes)

	dlq := events.DeadLetterQueue(saga.QueueOrderCommands)
	reasons := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(reasons) < len(poison) && time.Now().Before(deadline) {
		d, ok, err := ch.Get(dlq, true)
		require.NoError(t, err)
		if !ok {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		assert.Equal(t, "permanent", d.Headers["x-error-kind"], "message %q", d.MessageId)
		reasons[d.MessageId] = fmt.Sprint(d.Headers["x-error"])
	}
	require.Len(t, reasons, len(poison), "every poison message dead-lettered: %v", reasons)
	assert.Contains(t, reasons["not-json"], "invalid message")
	assert.Contains(t, reasons["bad-payload"], "total must be a positive integer")
	assert.Contains(t, reasons["unknown-type"], "unknown message type")
	for id, reason := range reasons {
		if id != "not-json" && id != "bad-payload" && id != "unknown-type" {
			assert.Contains(t, reason, "missing message_id")
		}
	}
}
