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
	// IfMissing marks an exchange that another service publishes to and
	// owns: it is only checked (a passive declare, which needs no
	// permission) and declared only where it does not exist yet.
	IfMissing bool
}

// Queue is a work queue and the routing keys it is bound with; its retry and
// dead-letter queues derive from its name.
type Queue struct {
	Name     string
	Bindings []Binding
	// IfMissing marks a queue that another service consumes and owns: it
	// is only checked, and declared with its retry and dead-letter queues
	// and bindings only where it does not exist yet.
	IfMissing bool
}

// Binding routes messages with Key from Exchange to a queue.
type Binding struct {
	Exchange string
	Key      string
}

// Topology is a set of exchanges and queues that a process declares when it
// connects (declaring is idempotent).
type Topology struct {
	Exchanges []Exchange
	Queues    []Queue
}

// Saga returns the whole topology of contract §4, as an operator (sagactl)
// declares it. A service declares its own part: GatewayTopology,
// OrderServiceTopology, PaymentServiceTopology.
func Saga() Topology {
	return Topology{
		Exchanges: []Exchange{orderCommands(), orderEvents(), paymentEvents()},
		Queues:    []Queue{orderCommandQueue(), orderPaymentEventQueue(), paymentOrderEventQueue()},
	}
}

// A service declares the exchanges it publishes to and the queues it
// consumes, with their retry and dead-letter queues and bindings, so that
// its broker user needs rights on nothing else (deploy/rabbitmq). What it
// needs from others it only checks, declaring it where it is missing: the
// exchanges its queues bind to (so a service can start before their
// publisher ever ran) and, for the gateway, the command queue.

// GatewayTopology is what the gateway declares: the command exchange, and
// the command queue where it is missing, so that a command accepted before
// the order service first ran is queued rather than answered 503. (In the
// compose stack the gateway's broker user may not declare that queue: the
// gateway starts after the order service has.)
func GatewayTopology() Topology {
	return Topology{
		Exchanges: []Exchange{orderCommands()},
		Queues:    []Queue{checkedQueue(orderCommandQueue())},
	}
}

// OrderServiceTopology is what the order service declares: the order
// events exchange, and its command and payment-event queues.
func OrderServiceTopology() Topology {
	return Topology{
		Exchanges: []Exchange{orderEvents(), checkedExchange(orderCommands()), checkedExchange(paymentEvents())},
		Queues:    []Queue{orderCommandQueue(), orderPaymentEventQueue()},
	}
}

// PaymentServiceTopology is what the payment service declares: the payment
// events exchange, and its order-event queue.
func PaymentServiceTopology() Topology {
	return Topology{
		Exchanges: []Exchange{paymentEvents(), checkedExchange(orderEvents())},
		Queues:    []Queue{paymentOrderEventQueue()},
	}
}

func orderCommands() Exchange { return Exchange{Name: ExchangeOrderCommands, Kind: "direct"} }
func orderEvents() Exchange   { return Exchange{Name: ExchangeOrderEvents, Kind: "topic"} }
func paymentEvents() Exchange { return Exchange{Name: ExchangePaymentEvents, Kind: "topic"} }

func orderCommandQueue() Queue {
	return Queue{Name: QueueOrderCommands, Bindings: []Binding{
		{ExchangeOrderCommands, TypeOrderCreateRequested},
		{ExchangeOrderCommands, TypeOrderCancelRequested},
	}}
}

func orderPaymentEventQueue() Queue {
	return Queue{Name: QueueOrderPaymentEvents, Bindings: []Binding{
		{ExchangePaymentEvents, "payment.*"},
	}}
}

// Every order event is bound, not only the two the payment service acts
// on: publishes are mandatory, so an event nobody is bound to would be
// returned as unroutable.
func paymentOrderEventQueue() Queue {
	return Queue{Name: QueuePaymentOrderEvents, Bindings: []Binding{
		{ExchangeOrderEvents, "order.*"},
	}}
}

// checkedExchange and checkedQueue mark what a service needs but another owns.
func checkedExchange(e Exchange) Exchange { e.IfMissing = true; return e }
func checkedQueue(q Queue) Queue          { q.IfMissing = true; return q }

// DeadLetterQueue is the name of the dead-letter queue of work queue q.
func DeadLetterQueue(q string) string { return q + ".dlq" }
