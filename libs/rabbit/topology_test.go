package rabbit_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// TestEnsureDeclaresWhatIsMissingOnly checks that what a topology marks
// IfMissing is declared in full where it is missing and left alone where it
// exists: a service's broker user then needs no rights on it (tests/compose
// checks that with the real users).
func TestEnsureDeclaresWhatIsMissingOnly(t *testing.T) {
	t.Parallel()
	b := testinfra.VHost(t)
	conn, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()

	// A publisher of commands, and an owner and a user of payment events.
	const commands = "test.commands"
	publisher := events.Topology{
		Exchanges: []events.Exchange{{Name: events.ExchangeOrderCommands, Kind: "direct"}},
		Queues: []events.Queue{{Name: commands, IfMissing: true, Bindings: []events.Binding{
			{Exchange: events.ExchangeOrderCommands, Key: events.TypeOrderCreateRequested}}}},
	}
	user := events.Topology{Exchanges: []events.Exchange{{Name: events.ExchangePaymentEvents, Kind: "topic", IfMissing: true}}}
	owner := events.Topology{Exchanges: []events.Exchange{{Name: events.ExchangePaymentEvents, Kind: "topic"}}}

	// Missing: the publisher declares the command queue, with its retry
	// and dead-letter queues and bindings.
	require.NoError(t, rabbit.Ensure(conn, publisher))
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	for _, q := range []string{commands, events.DeadLetterQueue(commands),
		rabbit.RetryQueue(commands, 0)} {
		_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, "%s was declared", q)
	}
	require.NoError(t, ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirm(events.ExchangeOrderCommands, events.TypeOrderCreateRequested, true, false,
		amqp.Publishing{MessageId: "m1", Body: []byte("{}")})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	acked, err := dc.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, acked)
	// The broker acks an unroutable mandatory message too (after returning
	// it): the queue's count is what shows the binding.
	q, err := ch.QueueDeclarePassive(commands, true, false, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, q.Messages, "a command is routed to the declared queue")

	// Present: a payment events exchange of another kind is only looked
	// up, not redeclared (which the broker would refuse as inequivalent).
	require.NoError(t, ch.ExchangeDeclare(events.ExchangePaymentEvents, "fanout", true, false, false, false, nil))
	assert.NoError(t, rabbit.Ensure(conn, user),
		"an existing exchange marked IfMissing is left as it is")
	assert.Error(t, rabbit.Ensure(conn, owner),
		"while its owner, which declares it, is refused the inequivalent exchange")
}
