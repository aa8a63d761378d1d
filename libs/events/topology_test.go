package events_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/events"
)

// TestServiceTopologiesSplitTheSaga checks that the services' own parts
// declare the whole saga between them, each part once: an exchange by its
// publisher (contract §4), a queue by its consumer (the prefix of its name),
// and that a service finds, or declares where missing, every exchange its
// queues bind to.
func TestServiceTopologiesSplitTheSaga(t *testing.T) {
	t.Parallel()
	parts := map[string]events.Topology{
		"gateway":         events.GatewayTopology(),
		"order-service":   events.OrderServiceTopology(),
		"payment-service": events.PaymentServiceTopology(),
	}
	publisher := map[string]string{
		events.ExchangeOrderCommands: "gateway",
		events.ExchangeOrderEvents:   "order-service",
		events.ExchangePaymentEvents: "payment-service",
	}
	exchanges := map[string]events.Exchange{}
	queues := map[string]events.Queue{}
	for service, part := range parts {
		known := map[string]bool{}
		for _, e := range part.Exchanges {
			known[e.Name] = true
			if e.IfMissing {
				continue
			}
			assert.Equal(t, publisher[e.Name], service, "%s is declared by its publisher", e.Name)
			_, twice := exchanges[e.Name]
			assert.False(t, twice, "%s is declared by one service", e.Name)
			exchanges[e.Name] = e
		}
		for _, q := range part.Queues {
			for _, b := range q.Bindings {
				assert.True(t, known[b.Exchange], "%s finds exchange %s before binding %s", service, b.Exchange, q.Name)
			}
			if q.IfMissing {
				continue
			}
			assert.True(t, strings.HasPrefix(q.Name, service+"."), "%s is declared by its consumer", q.Name)
			_, twice := queues[q.Name]
			assert.False(t, twice, "%s is declared by one service", q.Name)
			queues[q.Name] = q
		}
	}
	saga := events.Saga()
	assert.Len(t, exchanges, len(saga.Exchanges), "every exchange of the saga is some service's")
	for _, e := range saga.Exchanges {
		assert.Equal(t, e, exchanges[e.Name], "%s as the saga declares it", e.Name)
	}
	assert.Len(t, queues, len(saga.Queues), "every queue of the saga is some service's")
	for _, q := range saga.Queues {
		assert.Equal(t, q, queues[q.Name], "%s as the saga declares it", q.Name)
	}

	// The gateway's commands are answered 503 when unroutable; it makes
	// sure their queue exists rather than depend on the order service
	// having run once.
	gw := parts["gateway"]
	assert.Equal(t, []string{events.QueueOrderCommands}, []string{gw.Queues[0].Name})
	assert.True(t, gw.Queues[0].IfMissing, "the gateway only checks the command queue")
}
