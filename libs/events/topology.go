package events

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

// DeadLetterQueue is the name of the dead-letter queue of work queue q.
func DeadLetterQueue(q string) string { return q + ".dlq" }
