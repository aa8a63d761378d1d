package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Migration is what MigrateRetries did to one classic retry tier.
type Migration struct {
	From    string `json:"from"`    // the classic tier
	To      string `json:"to"`      // the quorum tier that replaces it
	Moved   int    `json:"moved"`   // messages moved across, confirmed
	Deleted bool   `json:"deleted"` // the classic tier was removed
}

// ErrNoQuorumRetries is returned by MigrateRetries on a broker older than
// 3.10: it has no at-least-once dead-lettering, so its classic tiers stay.
var ErrNoQuorumRetries = errors.New("the broker is older than 3.10: no at-least-once dead-lettering, the classic retry tiers stay")

// MigrateRetries moves a broker from the classic retry tiers to the quorum
// ones (rabbit.RetryQueue): it declares t (the quorum tiers included), then,
// for every classic tier that exists, moves its messages to the quorum tier
// of the same delay (each publish confirmed before its original is acked,
// so a message is never lost, at worst copied once if sagactl dies between
// the two) and deletes the classic tier once it is empty. Run it after
// every service runs a version with quorum tiers: older ones still publish
// retries to the classic tiers, whose deletion then fails as not empty, and
// the run can simply be repeated. Messages left in a classic tier are never
// lost either way: it keeps dead-lettering them to their work queue.
func MigrateRetries(ctx context.Context, amqpURL string, t events.Topology) ([]Migration, error) {
	// Dialled with no topology: Dial would declare the classic tiers of a
	// process without QuorumTiers; the quorum ones are declared below.
	conn, err := rabbit.Dial(ctx, amqpURL, "sagactl migrate", events.Topology{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if !conn.QuorumCapable() {
		return nil, ErrNoQuorumRetries
	}
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	if err := rabbit.Declare(ch, t, true); err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	var done []Migration
	for _, q := range t.Queues {
		for i := range rabbit.RetryDelays {
			m := Migration{From: rabbit.ClassicRetryQueue(q.Name, i), To: rabbit.QuorumRetryQueue(q.Name, i)}
			exists, err := queueExists(ctx, conn, m.From)
			if err != nil {
				return done, err
			}
			if !exists {
				continue
			}
			m.Moved, err = move(ctx, ch, m.From, m.To)
			if err == nil {
				_, err = ch.QueueDelete(m.From, false, true, false)
				m.Deleted = err == nil
			}
			done = append(done, m)
			if err != nil {
				return done, fmt.Errorf("migrate %s: %w", m.From, err)
			}
		}
	}
	return done, nil
}

// queueExists looks name up with a passive declare on a channel of its own
// (a declare that finds nothing closes its channel).
func queueExists(ctx context.Context, conn *rabbit.Conn, name string) (bool, error) {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return false, err
	}
	_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return false, nil
	}
	_ = ch.Close()
	return err == nil, err
}

// move takes every message of from and publishes it to to, acking each once
// the broker confirmed its copy.
func move(ctx context.Context, ch *amqp.Channel, from, to string) (int, error) {
	moved := 0
	for {
		d, ok, err := ch.Get(from, false)
		if err != nil || !ok {
			return moved, err
		}
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", to, true, false, rabbit.Republish(d))
		if err != nil {
			return moved, err
		}
		if acked, err := conf.WaitContext(ctx); err != nil || !acked {
			_ = d.Nack(false, true)
			return moved, errors.Join(err, fmt.Errorf("the broker did not confirm a message moved to %s", to))
		}
		if err := d.Ack(false); err != nil {
			return moved, err
		}
		moved++
	}
}
