package saga

import (
	"slices"

	"github.com/ordersaga/ordersaga/libs/events"
)

// Work queues of the existing participants, named here for their tests
// and tools; saga.conf declares them (its test checks these are there).
// A new participant needs no constant.
const (
	QueueOrderCommands      = "order-service.commands"
	QueueOrderPaymentEvents = "order-service.payment-events"
	QueuePaymentOrderEvents = "payment-service.order-events"
)

// Subscription is a work queue of a consumer and the exact message types
// bound to it: the types its handlers take (contract §4, no wildcards).
type Subscription struct {
	Consumer string
	Queue    string
	Types    []string
}

// Subscriptions returns saga.conf's table of who consumes what. Every
// queue, binding, retry tier and dead-letter queue of the saga derives from
// it, and each participant checks at start that it has a handler for each
// type bound to its queues, and no other.
func Subscriptions() []Subscription { return slices.Clone(the.subscriptions) }

// Publisher returns who publishes to exchange (saga.conf).
func Publisher(exchange string) string { return the.publishers[exchange] }

// Topology returns the whole topology of the saga, as an operator (sagactl)
// declares it: every exchange, every queue with its exact bindings.
func Topology() events.Topology {
	t := events.Topology{Exchanges: events.Exchanges()}
	for _, s := range the.subscriptions {
		t.Queues = append(t.Queues, s.queue())
	}
	return t
}

// TopologyOf returns what service declares when it connects: the exchanges
// it publishes to and the queues it consumes, so that its broker user needs
// rights on nothing else (deploy/rabbitmq). What others own it only checks
// (IfMissing), declaring it where it does not exist yet: the exchanges its
// queues bind to, so it can start before their publisher ever ran, and the
// queues bound to what it publishes, so that every event type has a queue
// from the day its producer publishes it, even before its consumer first ran
// (publishes are mandatory: an event bound to nothing would be returned).
//
// Its own queues come first: a service whose broker user may not declare
// another's queue (compose) waits, redialling, until that queue's owner
// declared it, and owners that wait for each other have each declared
// their own queues by then.
func TopologyOf(service string) events.Topology {
	var t events.Topology
	for _, e := range events.Exchanges() {
		if the.publishers[e.Name] == service {
			t.Exchanges = append(t.Exchanges, e)
		}
	}
	var checked []events.Queue
	for _, s := range the.subscriptions {
		q := s.queue()
		switch {
		case s.Consumer == service:
			t.Queues = append(t.Queues, q)
		case slices.ContainsFunc(q.Bindings, func(b events.Binding) bool { return the.publishers[b.Exchange] == service }):
			q.IfMissing = true
			checked = append(checked, q)
		}
	}
	t.Queues = append(t.Queues, checked...)
	bound := map[string]bool{}
	for _, q := range t.Queues {
		for _, b := range q.Bindings {
			bound[b.Exchange] = the.publishers[b.Exchange] != service
		}
	}
	for _, e := range events.Exchanges() {
		if bound[e.Name] {
			e.IfMissing = true
			t.Exchanges = append(t.Exchanges, e)
		}
	}
	return t
}

func (s Subscription) queue() events.Queue {
	q := events.Queue{Name: s.Queue}
	for _, typ := range s.Types {
		q.Bindings = append(q.Bindings, events.Binding{Exchange: events.ExchangeOf(typ), Key: typ})
	}
	return q
}
