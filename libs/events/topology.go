package events

// Work queues, one per consumer and source (contract §4).
const (
	QueueOrderCommands      = "order-service.commands"
	QueueOrderPaymentEvents = "order-service.payment-events"
	QueuePaymentOrderEvents = "payment-service.order-events"
)

// Exchange is a durable exchange of the topology.
type Exchange struct {
	Name string
	Kind string // direct or topic
}

// Queue is a work queue and the routing keys it is bound with; its retry and
// dead-letter queues derive from its name.
type Queue struct {
	Name     string
	Bindings []Binding
}

// Binding routes messages with Key from Exchange to a queue.
type Binding struct {
	Exchange string
	Key      string
}

// Topology is the whole RabbitMQ topology of the saga. Every process declares
// all of it (declaring is idempotent), so that a command published before its
// consumer ever ran is queued instead of returned as unroutable.
type Topology struct {
	Exchanges []Exchange
	Queues    []Queue
}

// Saga returns the topology of contract §4.
func Saga() Topology {
	return Topology{
		Exchanges: []Exchange{
			{Name: ExchangeOrderCommands, Kind: "direct"},
			{Name: ExchangeOrderEvents, Kind: "topic"},
			{Name: ExchangePaymentEvents, Kind: "topic"},
		},
		Queues: []Queue{
			{Name: QueueOrderCommands, Bindings: []Binding{
				{ExchangeOrderCommands, TypeOrderCreateRequested},
				{ExchangeOrderCommands, TypeOrderCancelRequested},
			}},
			{Name: QueueOrderPaymentEvents, Bindings: []Binding{
				{ExchangePaymentEvents, "payment.*"},
			}},
			// Every order event is bound, not only the two the payment
			// service acts on: publishes are mandatory, so an event nobody
			// is bound to would be returned as unroutable.
			{Name: QueuePaymentOrderEvents, Bindings: []Binding{
				{ExchangeOrderEvents, "order.*"},
			}},
		},
	}
}

// DeadLetterQueue is the name of the dead-letter queue of work queue q.
func DeadLetterQueue(q string) string { return q + ".dlq" }
