package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The exchange and routing keys of the saga's outcomes (contract §4).
const ordersEvents = "orders.events"

var finalKeys = []string{"order.paid", "order.cancelled", "order.failed"}

// Listener learns when each order reaches its outcome by subscribing to the
// order service's final events, so that completion is seen without adding
// GET requests to the load. The arrival time of an event is the moment the
// saga's outcome was visible to any subscriber: it includes the outbox
// relay's hop after the commit.
type Listener struct {
	conn *amqp.Connection
	done chan struct{}
	lost atomic.Value // string: why the subscription ended early
}

// Listen declares an exclusive, auto-delete queue bound to the final
// events on the vhost of amqpURL and feeds every delivery to tracker. The
// exchange is declared passively: the services own the topology, and a
// missing exchange means they are not running on this vhost.
func Listen(amqpURL string, tracker *Tracker) (*Listener, error) {
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
	if err := ch.ExchangeDeclarePassive(ordersEvents, "topic", true, false, false, false, nil); err != nil {
		return fail(fmt.Errorf("exchange %s (are the services running on this vhost?): %w", ordersEvents, err))
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fail(err)
	}
	for _, key := range finalKeys {
		if err := ch.QueueBind(q.Name, key, ordersEvents, false, nil); err != nil {
			return fail(err)
		}
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
			id := d.CorrelationId
			if id == "" {
				var body struct {
					OrderID string `json:"orderId"`
				}
				if json.Unmarshal(d.Body, &body) != nil || body.OrderID == "" {
					continue
				}
				id = body.OrderID
			}
			tracker.Final(id, strings.TrimPrefix(d.RoutingKey, "order."), at)
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
