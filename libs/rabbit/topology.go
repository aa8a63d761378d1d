package rabbit

import (
	"errors"
	"fmt"
	"os"
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

// QuorumTiers says whether this process declares its retry tiers as quorum
// queues that dead-letter at least once, wherever the broker supports it
// (RabbitMQ 3.10 and later; an older broker gets the classic tiers and a
// warning). On by default; RABBITMQ_QUORUM_RETRY_TIERS=false keeps the
// classic tiers, whose dead-lettering is at most once. Each quorum tier is
// a Raft group of its own: 27 more quorum queues for the saga's nine work
// queues, which costs about 0.07 s more to declare the whole topology on a
// fresh vhost and nothing measurable while the tiers are idle (README,
// "Running in production").
var QuorumTiers = quorumTiersSetting(os.Getenv("RABBITMQ_QUORUM_RETRY_TIERS"))

// quorumTiersSetting reads RABBITMQ_QUORUM_RETRY_TIERS: only "false" turns
// the quorum tiers off.
func quorumTiersSetting(v string) bool { return v != "false" }

// RetryQueue is the name of the delay queue of tier i of work queue q that
// this process declares on a current broker: the quorum tier with
// QuorumTiers, else the classic one.
func RetryQueue(q string, i int) string {
	return retryQueueOn(QuorumTiers, q, i)
}

// QuorumRetryQueue is the name of the quorum delay queue of tier i of work
// queue q. Its name differs from the classic tier's because a queue's type
// and arguments cannot change in place: both can exist on one broker while
// it is migrated (sagactl topology --migrate).
func QuorumRetryQueue(q string, i int) string {
	return ClassicRetryQueue(q, i) + ".quorum"
}

// ClassicRetryQueue is the name of the classic delay queue of tier i of work
// queue q: the tiers of brokers older than 3.10, which have no at-least-once
// dead-lettering, and those this code declared before it had quorum tiers.
// Their dead-lettering is at most once: a message expiring while its node
// goes down can be lost.
func ClassicRetryQueue(q string, i int) string {
	return fmt.Sprintf("%s.retry.%s", q, RetryDelays[i])
}

// QuorumRetries reports whether a broker of this version (the "version"
// server property, e.g. "3.10.8") has at-least-once dead-lettering from
// quorum queues, which came with 3.10. An unreadable version is taken to be
// a current broker.
func QuorumRetries(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return true
	}
	return major > 3 || (major == 3 && minor >= 10)
}

// retryQueueOn is the name of tier i of q on a broker with or without
// quorum retries.
func retryQueueOn(quorum bool, q string, i int) string {
	if quorum {
		return QuorumRetryQueue(q, i)
	}
	return ClassicRetryQueue(q, i)
}

// serverVersion is the broker's version as it announced it.
func serverVersion(conn *amqp.Connection) string {
	v, _ := conn.Properties["version"].(string)
	return v
}

// Declare declares every exchange and queue of t on ch, IfMissing or not:
// the work queues with their retry queues, dead-letter queues and bindings.
// It is idempotent. It is for a caller with every right on t (an operator);
// a service declares its part with Ensure.
// quorum says whether the retry tiers are quorum queues (QuorumRetries of
// the broker's version).
func Declare(ch *amqp.Channel, t events.Topology, quorum bool) error {
	for _, e := range t.Exchanges {
		if err := declareExchange(ch, e); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if err := declareQueue(ch, q, quorum); err != nil {
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
	quorum := QuorumTiers && QuorumRetries(serverVersion(conn))
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
		if err := declareQueue(ch, q, quorum); err != nil {
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
// queues (quorum or classic) and its bindings.
func declareQueue(ch *amqp.Channel, q events.Queue, quorum bool) error {
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
		name := retryQueueOn(quorum, q.Name, i)
		if _, err := ch.QueueDeclare(name, true, false, false, false, retryArgs(q.Name, d, quorum)); err != nil {
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

// retryArgs are the arguments of a delay tier of work queue q: its messages
// expire after d and go back to q. A quorum tier dead-letters at least once,
// which needs reject-publish overflow: the broker keeps an expired message
// until q has confirmed it.
func retryArgs(q string, d time.Duration, quorum bool) amqp.Table {
	args := amqp.Table{
		"x-message-ttl":             d.Milliseconds(),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": q,
	}
	if quorum {
		args["x-queue-type"] = "quorum"
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	return args
}
