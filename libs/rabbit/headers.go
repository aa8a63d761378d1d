package rabbit

// Names of the AMQP headers ordersaga sets and reads (contract §3-§4). Each
// is defined here once; sagactl and the services import them.
const (
	// HeaderSchemaVersion carries the message's schema version (an integer).
	HeaderSchemaVersion = "x-schema-version"
	// HeaderCausationID names the message or request that caused this one.
	HeaderCausationID = "x-causation-id"

	// HeaderError is the human-readable reason of a dead letter.
	HeaderError = "x-error"
	// HeaderErrorKind is ErrorKindPermanent or ErrorKindTransient.
	HeaderErrorKind = "x-error-kind"
	// HeaderAttempts counts the deliveries a message has had: set on each
	// retry and on the dead letter.
	HeaderAttempts = "x-attempts"
	// HeaderLastError is the reason of the last failed attempt, set on a
	// retry.
	HeaderLastError = "x-last-error"
	// HeaderOriginalQueue is the queue a dead letter was consumed from.
	HeaderOriginalQueue = "x-original-queue"
	// HeaderFailedAt is when a message was dead-lettered (RFC 3339, UTC).
	HeaderFailedAt = "x-failed-at"
	// HeaderReplayedAt is when sagactl replayed a dead letter (RFC 3339,
	// UTC).
	HeaderReplayedAt = "x-replayed-at"

	// HeaderDeath is RabbitMQ's own dead-lettering history.
	HeaderDeath = "x-death"
	// HeaderDeliveryCount is RabbitMQ's redelivery count on quorum queues.
	HeaderDeliveryCount = "x-delivery-count"
)

// Values of HeaderErrorKind.
const (
	// ErrorKindPermanent marks a message that no retry can fix: it is
	// dead-lettered at once.
	ErrorKindPermanent = "permanent"
	// ErrorKindTransient marks a message whose retries were all spent.
	ErrorKindTransient = "transient"
)
