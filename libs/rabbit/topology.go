package rabbit

import (
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/events"
)

// RetryDelays are the delay tiers of transient failures. Each is a queue
// named after its delay, so changing a delay adds a queue instead of
// conflicting with the arguments of an existing one.
var RetryDelays = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second}

// deliveryLimit is the quorum queues' own redelivery cap: a backstop for a
// message that crashes its consumer before any ack or retry could happen.
const deliveryLimit = 20

// RetryQueue is the name of the delay queue of tier i of work queue q.
func RetryQueue(q string, i int) string {
	return fmt.Sprintf("%s.retry.%s", q, RetryDelays[i])
}

// Declare declares the exchanges, work queues, retry queues, dead-letter
// queues and bindings of t. It is idempotent.
func Declare(ch *amqp.Channel, t events.Topology) error {
	for _, e := range t.Exchanges {
		if err := ch.ExchangeDeclare(e.Name, e.Kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", e.Name, err)
		}
	}
	for _, q := range t.Queues {
		dlq := events.DeadLetterQueue(q.Name)
		if _, err := ch.QueueDeclare(dlq, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			return fmt.Errorf("declare queue %s: %w", dlq, err)
		}
		if _, err := ch.QueueDeclare(q.Name, true, false, false, false, amqp.Table{
			"x-queue-type":              "quorum",
			"x-delivery-limit":          deliveryLimit,
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": dlq,
		}); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.Name, err)
		}
		for i, d := range RetryDelays {
			// A delay queue has no consumer: its messages expire and are
			// dead-lettered back to the work queue through the default exchange.
			name := RetryQueue(q.Name, i)
			if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{
				"x-message-ttl":             d.Milliseconds(),
				"x-dead-letter-exchange":    "",
				"x-dead-letter-routing-key": q.Name,
			}); err != nil {
				return fmt.Errorf("declare queue %s: %w", name, err)
			}
		}
		for _, b := range q.Bindings {
			if err := ch.QueueBind(q.Name, b.Key, b.Exchange, false, nil); err != nil {
				return fmt.Errorf("bind %s to %s/%s: %w", q.Name, b.Exchange, b.Key, err)
			}
		}
	}
	return nil
}
