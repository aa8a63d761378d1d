package saga

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

// publishersAndConsumers is every service that declares a part of the
// topology: the participants and the gateway.
func publishersAndConsumers() []string {
	names := []string{"gateway"}
	for _, p := range Participants() {
		names = append(names, p.Name)
	}
	// A publisher not deployed yet (no participant line) still owns its
	// exchange.
	for _, e := range events.Exchanges() {
		if p := Publisher(e.Name); p != "" && !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	return names
}

func TestEveryPublishedTypeReachesAQueueFromItsProducersStart(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		producer := Publisher(events.ExchangeOf(typ))
		require.NotEmpty(t, producer, "%s has a publisher", typ)
		// Publishes are mandatory: the producer's own declarations must
		// give the type a queue, whoever else has started.
		bound := false
		for _, q := range TopologyOf(producer).Queues {
			bound = bound || slices.Contains(q.Bindings, events.Binding{Exchange: events.ExchangeOf(typ), Key: typ})
		}
		assert.True(t, bound, "%s: %s declares (where missing) a queue bound to it", typ, producer)
	}
}

func TestSubscriptionsAreExactAndOwned(t *testing.T) {
	t.Parallel()
	queues := map[string]bool{}
	for _, s := range Subscriptions() {
		// A consumer need not be a participant yet (contract §4: its
		// producer declares its queue where missing); parse checks the rest.
		assert.True(t, strings.HasPrefix(s.Queue, s.Consumer+"."), "%s is named after its consumer", s.Queue)
		queues[s.Queue] = true
		require.NotEmpty(t, s.Types, s.Queue)
		for _, typ := range s.Types {
			assert.True(t, events.Known(typ), "%s binds %q, a type of the contract (no wildcards)", s.Queue, typ)
		}
	}
	for _, q := range []string{QueueOrderCommands, QueueOrderPaymentEvents, QueuePaymentOrderEvents} {
		assert.True(t, queues[q], "%s, named in topology.go, is subscribed in saga.conf", q)
	}
}

// TestServiceTopologiesSplitTheSaga checks that the services' own parts
// declare the whole saga between them, each part once: an exchange by its
// publisher, a queue by its consumer, and that a service finds, or declares
// where missing, every exchange the queues it declares bind to.
func TestServiceTopologiesSplitTheSaga(t *testing.T) {
	t.Parallel()
	exchanges := map[string]events.Exchange{}
	queues := map[string]events.Queue{}
	// The queues of a consumer not deployed yet (no participant line) are
	// declared, where missing, by their producers only.
	undeployed := map[string]events.Queue{}
	for _, service := range publishersAndConsumers() {
		part := TopologyOf(service)
		known := map[string]bool{}
		for _, e := range part.Exchanges {
			known[e.Name] = true
			if e.IfMissing {
				continue
			}
			assert.Equal(t, Publisher(e.Name), service, "%s is declared by its publisher", e.Name)
			_, twice := exchanges[e.Name]
			assert.False(t, twice, "%s is declared by one service", e.Name)
			exchanges[e.Name] = e
		}
		for _, q := range part.Queues {
			for _, b := range q.Bindings {
				assert.True(t, known[b.Exchange], "%s finds exchange %s before binding %s", service, b.Exchange, q.Name)
			}
			if q.IfMissing {
				if consumer, _, _ := strings.Cut(q.Name, "."); !slices.Contains(publishersAndConsumers(), consumer) {
					q.IfMissing = false
					undeployed[q.Name] = q
				}
				continue
			}
			assert.True(t, strings.HasPrefix(q.Name, service+"."), "%s is declared by its consumer", q.Name)
			_, twice := queues[q.Name]
			assert.False(t, twice, "%s is declared by one service", q.Name)
			queues[q.Name] = q
		}
	}
	saga := Topology()
	assert.Len(t, exchanges, len(saga.Exchanges), "every exchange of the saga is some service's")
	for _, e := range saga.Exchanges {
		assert.Equal(t, e, exchanges[e.Name], "%s as the saga declares it", e.Name)
	}
	maps.Copy(queues, undeployed)
	assert.Len(t, queues, len(saga.Queues), "every queue of the saga is some service's, or its producers' until its consumer is deployed")
	for _, q := range saga.Queues {
		assert.Equal(t, q, queues[q.Name], "%s as the saga declares it", q.Name)
	}

	// The gateway's commands are answered 503 when unroutable; it makes
	// sure their queue exists rather than depend on the order service
	// having run once.
	gw := TopologyOf("gateway")
	var names []string
	for _, q := range gw.Queues {
		names = append(names, q.Name)
		assert.True(t, q.IfMissing, "the gateway only checks the command queue %s", q.Name)
	}
	assert.Equal(t, []string{QueueOrderCommands, "inventory-service.commands"}, names, "one per exchange of commands")
}
