package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The exchanges and routing keys the listener hears: the saga's outcomes
// (contract §4) and the invoices of paid orders (contract §6).
const (
	ordersEvents   = "orders.events"
	invoicesEvents = "invoices.events"
	invoiceIssued  = "invoice.issued"
)

var finalKeys = []string{"order.paid", "order.cancelled", "order.failed"}

// subscription is the events of one exchange the listener hears, and
// what it does with each: the ids its properties or body name, and when it
// arrived. Bodies are parsed only when the subscription needs them (body)
// or an event has no correlation id: loadgen shares the CPUs it measures.
type subscription struct {
	exchange string
	keys     []string
	body     bool
	deliver  func(routingKey string, ids eventIDs, at time.Time)
}

// eventIDs are the ids an event names: its order (the correlation id, or
// the body's orderId) and, for invoice events, the invoice.
type eventIDs struct {
	OrderID   string `json:"orderId"`
	InvoiceID string `json:"invoiceId"`
}

// Listener learns when each order reaches its outcome (and, with
// invoices, when its invoice is issued) by subscribing to the services'
// events, so that completion is seen without adding GET requests to the
// load. The arrival time of an event is the moment it was visible to any
// subscriber: it includes the outbox relay's hop after the commit.
type Listener struct {
	conn *amqp.Connection
	done chan struct{}
	lost atomic.Value // string: why the subscription ended early
}

// Listen declares an exclusive, auto-delete queue bound to the final
// events (and with invoices to invoice.issued) on the vhost of amqpURL and
// feeds every delivery to tracker. The exchanges are declared passively:
// the services own the topology, and a missing exchange means they are not
// running on this vhost.
func Listen(amqpURL string, tracker *Tracker, invoices bool) (*Listener, error) {
	subs := []subscription{{ordersEvents, finalKeys, false, func(key string, ids eventIDs, at time.Time) {
		tracker.Final(ids.OrderID, strings.TrimPrefix(key, "order."), at)
	}}}
	if invoices {
		subs = append(subs, subscription{invoicesEvents, []string{invoiceIssued}, true, func(_ string, ids eventIDs, at time.Time) {
			tracker.Invoice(ids.OrderID, ids.InvoiceID, at)
		}})
	}
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Properties: amqp.Table{"connection_name": "loadgen final events"}})
	if err != nil {
		return nil, fmt.Errorf("listen for final events: %w", err)
	}
	fail := func(err error) (*Listener, error) {
		conn.Close()
		return nil, fmt.Errorf("listen for final events: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fail(err)
	}
	byExchange := map[string]subscription{}
	for _, sub := range subs {
		if err := ch.ExchangeDeclarePassive(sub.exchange, "topic", true, false, false, false, nil); err != nil {
			return fail(fmt.Errorf("exchange %s (are the services running on this vhost?): %w", sub.exchange, err))
		}
		for _, key := range sub.keys {
			if err := ch.QueueBind(q.Name, key, sub.exchange, false, nil); err != nil {
				return fail(err)
			}
		}
		byExchange[sub.exchange] = sub
	}
	// Auto-ack: the queue is ours alone and lives as long as the run.
	deliveries, err := ch.Consume(q.Name, "loadgen", true, true, false, false, nil)
	if err != nil {
		return fail(err)
	}
	l := &Listener{conn: conn, done: make(chan struct{})}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		defer close(l.done)
		for d := range deliveries {
			at := time.Now()
			sub, ok := byExchange[d.Exchange]
			if !ok {
				continue
			}
			var ids eventIDs
			if sub.body || d.CorrelationId == "" {
				_ = json.Unmarshal(d.Body, &ids) // what is missing is checked below
			}
			if d.CorrelationId != "" {
				ids.OrderID = d.CorrelationId
			}
			if ids.OrderID == "" {
				continue
			}
			sub.deliver(d.RoutingKey, ids, at)
		}
		if err, ok := <-closed; ok && err != nil {
			l.lost.Store(err.Error())
		}
	}()
	return l, nil
}

// Lost says why the subscription ended before Close, or "".
func (l *Listener) Lost() string {
	s, _ := l.lost.Load().(string)
	return s
}

// Close ends the subscription; its queue goes with the connection.
func (l *Listener) Close() {
	l.conn.Close()
	<-l.done
}
