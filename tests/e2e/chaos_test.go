package e2e

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"
)

// chaosOrders is how many orders each fault scenario sends: a short run by
// default, CHAOS_ORDERS=300 for `make chaos`.
func chaosOrders() int {
	if n, err := strconv.Atoi(os.Getenv("CHAOS_ORDERS")); err == nil && n > 0 {
		return n
	}
	return 120
}

// loadResult is what a steady load through the gateway got.
type loadResult struct {
	accepted []string
	refused  int // 503: the broker did not confirm; nothing was promised
	lastPOST time.Time
	lines    map[string][]gatewayclient.NewOrderLine // the accepted orders with items
}

func (r *loadResult) add(id string, lines []gatewayclient.NewOrderLine) {
	r.accepted = append(r.accepted, id)
	if lines != nil {
		if r.lines == nil {
			r.lines = map[string][]gatewayclient.NewOrderLine{}
		}
		r.lines[id] = lines
	}
}

// load POSTs n orders of c's mix at rate per second, calls fault once
// after a third of them and adjusts the stock once half-way.
func (s *System) load(t testing.TB, c *catalogue, n int, rate float64, fault func()) loadResult {
	t.Helper()
	var r loadResult
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range n {
		if i == n/3 && fault != nil {
			fault()
		}
		if i == n/2 {
			c.adjust(s)
		}
		<-tick.C
		body, lines := c.order(i)
		resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, body)
		require.NoError(t, err, "POST %d", i)
		switch resp.StatusCode() {
		case http.StatusAccepted:
			r.add(resp.JSON202.OrderId.String(), lines)
		case http.StatusServiceUnavailable:
			r.refused++
		default:
			t.Errorf("POST %d: HTTP %d", i, resp.StatusCode())
		}
	}
	r.lastPOST = time.Now()
	return r
}

// report checks every accepted order and the stock against the contract's
// invariants (§3, §9) within 60 s of the last POST and logs the scenario's
// figures.
func (s *System) report(t testing.TB, scenario string, c *catalogue, r loadResult) {
	t.Helper()
	require.NotEmpty(t, r.accepted, "some orders were accepted")
	outcomes, f := s.settle(t, c, r, r.lastPOST.Add(60*time.Second))
	drained := f.final.Sub(r.lastPOST)
	stuck := len(r.accepted) - outcomes["PAID/APPROVED"] - outcomes["CANCELLED/"]
	if s.Mail != nil {
		// §9's e-mail invariant, where the harness runs notification-service.
		emails := s.checkEmails(t, s.finalStatuses(t, r.accepted), time.Now().Add(60*time.Second), 1)
		t.Logf("CHAOS %-28s e-mails=%v", scenario, emails)
	}
	t.Logf("CHAOS %-28s orders=%d accepted=%d refused503=%d lost=0 double-charged=0 stuck=%d settled-after-last-POST=%v "+
		"items=%d paid=%d out-of-stock=%d units-sold=%d stock-reads=%d negative-stock=0 stock-settled-after=%v",
		scenario, len(r.accepted)+r.refused, len(r.accepted), r.refused, stuck, drained.Round(time.Millisecond),
		f.items, f.paidItems, f.outOfStock, f.sold, c.reads.Load(), f.settled.Round(time.Millisecond))
}

func TestChaosPostgresBackendsTerminated(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	n := chaosOrders()
	c := s.newCatalogue(t, n)
	var terminations atomic.Int64
	var rounds sync.WaitGroup
	r := s.load(t, c, n, 40, func() {
		// Three rounds, spread over the rest of the load.
		rounds.Go(func() {
			for range 3 {
				terminations.Add(int64(testinfra.TerminateBackends(t, s.OrderDB, s.PaymentDB, s.DB[invoiceService])))
				time.Sleep(time.Duration(n) * 25 / 3 / 2 * time.Millisecond)
			}
		})
	})
	rounds.Wait()
	s.report(t, "postgres backends killed", c, r)
	assert.Positive(t, terminations.Load(), "backends were terminated")
}

func TestChaosTwoInstancesOneKilled(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "100ms"})
	s.StartInstance("order-service", "order-service#2")
	s.StartInstance("payment-service", "payment-service#2")
	s.StartInstance(inventoryService, inventoryService+"#2")
	// Two invoice-service instances number invoices at once (contract §6:
	// gapless also then), and one dies mid-way.
	s.StartInstance(invoiceService, invoiceService+"#2")
	c := s.newCatalogue(t, chaosOrders())
	// The gateway queries the first instances (no load balancer here), so
	// the second ones die: with messages in flight on the shared queues.
	r := s.load(t, c, chaosOrders(), 40, func() {
		s.Kill("order-service#2")
		s.Kill("payment-service#2")
		s.Kill(inventoryService + "#2")
		s.Kill(invoiceService + "#2")
	})
	s.report(t, "two instances, one killed", c, r)
}

// TestChaosDuplicateFlood publishes every event of the saga a second time,
// with the same message id, as a misbehaving relay or network would.
func TestChaosDuplicateFlood(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	tap, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	for _, ex := range []string{events.ExchangeOrderEvents, events.ExchangePaymentEvents, events.ExchangeInventoryEvents} {
		require.NoError(t, ch.QueueBind(tap.Name, "#", ex, false, nil))
	}
	deliveries, err := ch.Consume(tap.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	pubCh, err := conn.Channel()
	require.NoError(t, err)
	var duplicated atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for d := range deliveries {
			if d.Headers["x-test-duplicate"] != nil {
				continue
			}
			headers := amqp.Table{"x-test-duplicate": true}
			for k, v := range d.Headers {
				headers[k] = v
			}
			err := pubCh.Publish(d.Exchange, d.RoutingKey, false, false, amqp.Publishing{
				ContentType: d.ContentType, DeliveryMode: amqp.Persistent, MessageId: d.MessageId, Type: d.Type,
				CorrelationId: d.CorrelationId, Timestamp: d.Timestamp, AppId: d.AppId, Headers: headers, Body: d.Body,
			})
			if err == nil {
				duplicated.Add(1)
			}
		}
	})
	c := s.newCatalogue(t, chaosOrders())
	r := s.load(t, c, chaosOrders(), 40, nil)
	s.report(t, "every event published twice", c, r)
	ch.Close() // ends the duplicator
	wg.Wait()
	assert.GreaterOrEqual(t, duplicated.Load(), int64(3*len(r.accepted)), "at least three events of every order's saga duplicated")
}

// TestChaosBacklogDrain queues commands while the order service is down and
// measures how long the saga takes to drain them.
func TestChaosBacklogDrain(t *testing.T) {
	t.Parallel()
	n := 500
	if v, err := strconv.Atoi(os.Getenv("CHAOS_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	// A 10k backlog keeps orders with items waiting for the inventory for
	// minutes: the scenario measures the drain, not ORDER_STOCK_TIMEOUT (2m).
	s := Start(t, map[string]string{"ORDER_STOCK_TIMEOUT": "15m"})
	c := s.newCatalogue(t, n)
	s.Stop("order-service")
	ids := make([]string, n)
	lines := make([][]gatewayclient.NewOrderLine, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ids[i], lines[i] = c.place(t, s, i)
		})
	}
	wg.Wait()
	var r loadResult
	for i := range ids {
		r.add(ids[i], lines[i])
	}
	start := time.Now()
	s.StartService("order-service")
	// The inventory settles its commits after the orders are final: with
	// a 10k backlog that takes as long again.
	_, f := s.settle(t, c, r, start.Add(8*time.Minute))
	elapsed := f.final.Sub(start)
	t.Logf("CHAOS %-28s orders=%d drained-in=%v (%.0f sagas/s, race-built binaries) items=%d paid=%d out-of-stock=%d units-sold=%d stock-reads=%d negative-stock=0 stock-settled-after=%v",
		"backlog drain", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
		f.items, f.paidItems, f.outOfStock, f.sold, c.reads.Load(), f.settled.Round(time.Millisecond))
}

// TestChaosBrokerRestart stops and starts the RabbitMQ application under
// load, on a node of its own: never the machine's broker.
func TestChaosBrokerRestart(t *testing.T) {
	t.Parallel()
	s, node := StartPrivate(t, nil)
	var downFrom, downTo time.Time
	var refusedWhileDown, acceptedWhileDown int
	// assert, not require: it also runs on the restart goroutine.
	run := func(args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := node.Ctl(ctx, args...)
		assert.NoError(t, err)
	}
	var restart sync.WaitGroup
	c := s.newCatalogue(t, chaosOrders())
	r := s.load(t, c, chaosOrders(), 30, func() {
		run("stop_app")
		downFrom = time.Now()
		// Keep POSTing for two seconds with the broker down.
		end := time.Now().Add(2 * time.Second)
		for time.Now().Before(end) {
			resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, totalOrder(uuid.NewString(), 1, ""))
			require.NoError(t, err)
			if resp.StatusCode() == http.StatusAccepted {
				acceptedWhileDown++
			} else {
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode())
				refusedWhileDown++
			}
		}
		downTo = time.Now()
		restart.Go(func() {
			run("start_app")
			run("await_startup", "--timeout", "60")
			// The management listener comes up a little after the
			// broker: wait for the whole node to be back.
			assert.Eventually(t, func() bool {
				return testinfra.Management(s.Broker.ManagementURL, http.MethodGet, "/api/overview", "") == nil
			}, 60*time.Second, 100*time.Millisecond, "management API back after start_app")
		})
	})
	restart.Wait()
	assert.Zero(t, acceptedWhileDown, "no 202 while the broker is down")
	assert.Positive(t, refusedWhileDown)
	s.report(t, "broker restarted", c, r)
	t.Logf("broker down for %v: %d POSTs refused with 503, %d accepted", downTo.Sub(downFrom).Round(time.Millisecond),
		refusedWhileDown, acceptedWhileDown)
}

// TestChaosDatabaseOutage makes the order service's database refuse every
// connection while orders arrive: the service reports itself unready, GETs
// answer 503, messages wait instead of spending their retry attempts, and
// the backlog drains by itself once the database is back.
func TestChaosDatabaseOutage(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	c := s.newCatalogue(t, 20)
	testinfra.AllowConnections(t, s.OrderDB, false)
	outage := true
	t.Cleanup(func() {
		if outage {
			testinfra.AllowConnections(t, s.OrderDB, true)
		}
	})
	var r loadResult
	for i := range 20 {
		r.add(c.place(t, s, i))
	}
	ids := r.accepted
	resp, err := http.Get(s.OrderURL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "order-service reports its database down")
	_, status := s.getOrder(t, ids[0])
	assert.Equal(t, http.StatusServiceUnavailable, status,
		"queries answer 503 while the database is down")

	// Give the consumer time to fail on every message at least once.
	time.Sleep(2 * time.Second)
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for _, q := range []string{rabbit.RetryQueue(saga.QueueOrderCommands, 0), events.DeadLetterQueue(saga.QueueOrderCommands)} {
		info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err)
		assert.Zero(t, info.Messages, "%s: no attempt spent on a database outage", q)
	}

	testinfra.AllowConnections(t, s.OrderDB, true)
	outage = false
	r.lastPOST = time.Now()
	s.report(t, "order database outage", c, r)
}
