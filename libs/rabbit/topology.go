package rabbit

import (
	"errors"
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

// Declare declares every exchange and queue of t on ch, IfMissing or not:
// the work queues with their retry queues, dead-letter queues and bindings.
// It is idempotent. It is for a caller with every right on t (an operator);
// a service declares its part with Ensure.
func Declare(ch *amqp.Channel, t events.Topology) error {
	for _, e := range t.Exchanges {
		if err := declareExchange(ch, e); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if err := declareQueue(ch, q); err != nil {
			return err
		}
	}
	return nil
}

// Ensure declares t on conn like Declare, except that what t marks
// IfMissing is first looked up with a passive declare, which needs no
// permission, and declared only where it does not exist: a service's broker
// user then needs no rights on what another service owns, once that exists.
// Exchanges come first, so that bindings find them.
func Ensure(conn *amqp.Connection, t events.Topology) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer func() { _ = ch.Close() }()
	for _, e := range t.Exchanges {
		if e.IfMissing {
			missing, err := lookUp(conn, func(c *amqp.Channel) error {
				return c.ExchangeDeclarePassive(e.Name, e.Kind, true, false, false, false, nil)
			})
			if err != nil {
				return fmt.Errorf("look up exchange %s: %w", e.Name, err)
			}
			if !missing {
				continue
			}
		}
		if err := declareExchange(ch, e); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if q.IfMissing {
			missing, err := lookUp(conn, func(c *amqp.Channel) error {
				_, err := c.QueueDeclarePassive(q.Name, true, false, false, false, nil)
				return err
			})
			if err != nil {
				return fmt.Errorf("look up queue %s: %w", q.Name, err)
			}
			if !missing {
				continue
			}
		}
		if err := declareQueue(ch, q); err != nil {
			return err
		}
	}
	return nil
}

// lookUp runs a passive declare on a channel of its own, since a declare
// that finds nothing closes its channel, and reports whether it found
// nothing.
func lookUp(conn *amqp.Connection, passive func(*amqp.Channel) error) (missing bool, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	err = passive(ch)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return true, nil // the broker closed ch
	}
	_ = ch.Close()
	return false, err
}

func declareExchange(ch *amqp.Channel, e events.Exchange) error {
	if err := ch.ExchangeDeclare(e.Name, e.Kind, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", e.Name, err)
	}
	return nil
}

// declareQueue declares work queue q, its dead-letter queue, its retry
// queues and its bindings.
func declareQueue(ch *amqp.Channel, q events.Queue) error {
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
	return nil
}
