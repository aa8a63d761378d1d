package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/libs/tracing"
)

// Delivery is a received message as handlers see it, free of AMQP types.
type Delivery struct {
	MessageID     string
	Type          string
	CorrelationID string
	CausationID   string
	AppID         string
	Timestamp     time.Time
	Body          []byte
	// Attempt counts deliveries through the retry tiers: 1 the first time.
	Attempt int
	// LastError is the reason the previous attempt failed (header
	// x-last-error), "" at the first attempt.
	LastError string
	// Trace is the context of the span that handles the delivery, a child
	// of the trace context its headers carry; invalid when not traced. What
	// its handling emits continues this trace (libs/uow).
	Trace trace.SpanContext
}

// BatchHandler processes several deliveries at once, typically in one
// database transaction, and returns one error per delivery, in order. nil
// acks the delivery. An error wrapping events.ErrInvalid (or made by
// Permanent) dead-letters it at once; any other error is transient and
// retried after a delay.
type BatchHandler func(ctx context.Context, ds []Delivery) []error

// PermanentError marks a failure that no retry can mend.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err can never succeed on retry.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrInvalid)
}

// ConsumerTuning is how consumers take their work, as every participant
// configures it (contract §1). Its tags hold the one set of defaults: the
// participants' and NewConsumer's for whatever is left zero.
type ConsumerTuning struct {
	// Prefetch bounds the deliveries in flight per consumer.
	Prefetch int `env:"CONSUMER_PREFETCH" envDefault:"64" valid:"1..10000"`
	// Workers is how many batches each consumer handles at once.
	Workers int `env:"CONSUMER_WORKERS" envDefault:"4" valid:"1..256"`
	// MaxBatch bounds the deliveries one batch (one transaction) takes.
	MaxBatch int `env:"CONSUMER_MAX_BATCH" envDefault:"32" valid:"1..1000"`
	// MaxAttempts is how often a transiently failing message is tried
	// before it is dead-lettered.
	MaxAttempts int `env:"CONSUMER_MAX_ATTEMPTS" envDefault:"5" valid:"1..100"`
}

// DefaultTuning returns ConsumerTuning's defaults, read from its tags.
var DefaultTuning = sync.OnceValue(func() ConsumerTuning {
	var t ConsumerTuning
	if err := settings.Parse(func(string) string { return "" }, &t); err != nil {
		panic(err) // the tags are constants, and TestDefaultTuning reads them
	}
	return t
})

// ConsumerConfig tunes a consumer.
type ConsumerConfig struct {
	Queue string
	// Prefetch bounds the deliveries in flight (delivered, not yet acked).
	Prefetch int
	// Workers is how many batches are handled at once.
	Workers int
	// MaxBatch bounds the deliveries one worker takes at once: whatever is
	// waiting, up to MaxBatch, so a busy queue is handled in few
	// transactions and a quiet one without any delay.
	MaxBatch int
	// MaxAttempts is how many times a transiently failing message is tried
	// before it goes to the dead-letter queue.
	MaxAttempts int
	// HandlerTimeout bounds one handler call.
	HandlerTimeout time.Duration
	// DrainTimeout bounds how long shutdown waits for handlers in flight.
	DrainTimeout time.Duration
	// Ready, when set, tells whether the consumer's own dependencies (its
	// database) are up. A transient failure while they are down is not the
	// message's fault: the message is requeued without spending an attempt,
	// once Ready passes again.
	Ready func(context.Context) error
}

// Consumer consumes one work queue with manual acks.
type Consumer struct {
	conn    *Conn
	pub     *Publisher
	cfg     ConsumerConfig
	handler BatchHandler
	log     *slog.Logger
	metrics *Metrics
	// held are the settlements waiting for the broker to unblock
	// publishing; consume waits for them before it returns.
	held sync.WaitGroup
}

// NewConsumer returns a consumer of cfg.Queue. pub publishes retries and
// dead letters.
func NewConsumer(conn *Conn, pub *Publisher, cfg ConsumerConfig, h BatchHandler, log *slog.Logger, m *Metrics) *Consumer {
	def := DefaultTuning()
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = def.Prefetch
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 30 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	return &Consumer{conn: conn, pub: pub, cfg: cfg, handler: h, log: log.With("queue", cfg.Queue), metrics: m}
}

// Run consumes until ctx ends, resubscribing whenever the channel or the
// connection is lost. On return every handler it started has finished.
func (c *Consumer) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.consume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("consumer interrupted; resubscribing", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff(min(attempt, 3))):
		}
	}
}

func (c *Consumer) consume(ctx context.Context) error {
	ch, err := c.conn.Channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	tag := c.cfg.Queue + "-" + uuid.NewString()[:8]
	deliveries, err := ch.Consume(c.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.Queue, err)
	}
	c.log.Info("consuming", "prefetch", c.cfg.Prefetch)

	// Handlers run on their own context: shutdown stops new deliveries
	// but lets the ones in flight finish (within DrainTimeout).
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	// Held settlements end with the handlers' context, before the channel
	// closes (deferred calls run last first).
	defer c.held.Wait()
	defer cancelHandlers()
	// Workers take what has arrived, up to MaxBatch, and handle it as one
	// batch; while they are busy the client buffers what the prefetch lets
	// in, so batches grow with the load. What is not taken when the channel
	// closes was never acked and goes back to the queue.
	closed := make(chan struct{})
	var closeOnce sync.Once
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for {
				batch, ok := c.take(ctx, deliveries)
				if len(batch) > 0 {
					c.process(hctx, batch)
				}
				if !ok {
					closeOnce.Do(func() { close(closed) })
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var runErr error
	select {
	case <-ctx.Done():
		// Stop the flow first; the workers finish their batches.
		_ = ch.Cancel(tag, false)
	case <-closed:
		if ctx.Err() == nil {
			runErr = errors.New("delivery channel closed")
		}
	}
	select {
	case <-done:
	case <-time.After(c.cfg.DrainTimeout):
		c.log.Warn("handlers still running at shutdown; their messages will be redelivered")
		cancelHandlers()
		<-done
	}
	return runErr
}

// take waits for a delivery and adds whatever else is already waiting, up
// to MaxBatch. ok is false once ctx ended or the channel closed.
func (c *Consumer) take(ctx context.Context, deliveries <-chan amqp.Delivery) (batch []amqp.Delivery, ok bool) {
	select {
	case <-ctx.Done():
		return nil, false
	case d, open := <-deliveries:
		if !open {
			return nil, false
		}
		batch = append(make([]amqp.Delivery, 0, c.cfg.MaxBatch), d)
	}
	// The client hands over its buffered deliveries from a goroutine of
	// its own, which needs to run between two of them: yield to it once
	// before deciding that nothing more is waiting.
	yielded := false
	for len(batch) < c.cfg.MaxBatch {
		select {
		case d, open := <-deliveries:
			if !open {
				return batch, false
			}
			batch = append(batch, d)
			yielded = false
		default:
			if yielded {
				return batch, true
			}
			runtime.Gosched()
			yielded = true
		}
	}
	return batch, true
}

// process handles a batch and settles every delivery of it exactly once.
func (c *Consumer) process(ctx context.Context, batch []amqp.Delivery) {
	start := time.Now()
	dels := make([]Delivery, len(batch))
	errs := make([]error, len(batch))
	var valid []Delivery
	var at []int
	var spans []trace.Span // one per delivery, when tracing
	if tracing.Enabled() {
		spans = make([]trace.Span, len(batch))
	}
	for i, d := range batch {
		dels[i] = toDelivery(d)
		if spans != nil {
			var sctx context.Context
			sctx, spans[i] = consumeSpan(ctx, c.cfg.Queue, d, dels[i].Attempt)
			dels[i].Trace = trace.SpanContextFromContext(sctx)
		}
		if errs[i] = check(d); errs[i] == nil {
			valid = append(valid, dels[i])
			at = append(at, i)
		}
	}
	c.metrics.observeBatch(c.cfg.Queue, len(batch))
	if len(valid) > 0 {
		for j, err := range c.handle(ctx, valid) {
			errs[at[j]] = err
		}
	}
	elapsed := time.Since(start)
	// A transient failure while the consumer's own dependency is down is
	// not the messages' fault: every such message of the batch waits for
	// it, once, and goes back to the queue without spending an attempt.
	paused := false
	for _, err := range errs {
		if err != nil && !IsPermanent(err) {
			paused = c.cfg.Ready != nil && c.cfg.Ready(ctx) != nil
			break
		}
	}
	if paused {
		c.log.Warn("dependency down; messages wait for it", "messages", len(batch))
		c.metrics.pausing(c.cfg.Queue, 1)
		c.waitReady(ctx)
		c.metrics.pausing(c.cfg.Queue, -1)
	}
	for i, d := range batch {
		sctx := ctx
		if spans != nil {
			sctx = trace.ContextWithSpan(ctx, spans[i])
		}
		c.settle(sctx, d, dels[i], errs[i], paused, elapsed)
	}
}

// settle acks, retries or dead-letters d after its handling ended with err,
// and ends the span of ctx, if it has one, with what happened.
func (c *Consumer) settle(ctx context.Context, d amqp.Delivery, del Delivery, err error, paused bool, elapsed time.Duration) {
	cause := err
	var what []attribute.KeyValue // what happened, for the span
	// The correlation id of a saga message is its order id.
	log := c.log.With("type", d.Type, "message_id", d.MessageId, "correlation_id", d.CorrelationId,
		"order_id", d.CorrelationId, "causation_id", del.CausationID, "attempt", del.Attempt)
	outcome := "ok"
	switch {
	case err == nil:
		err = d.Ack(false)
	case IsPermanent(err):
		outcome = "dead_lettered"
		log.WarnContext(ctx, "message dead-lettered", "error", err)
		what = deadLetterAttrs(c.cfg.Queue, ErrorKindPermanent, del.Attempt)
		err = c.settleVia(ctx, d, c.deadLetter(d, err, ErrorKindPermanent, del.Attempt))
	case paused:
		outcome = "paused"
		log.WarnContext(ctx, "dependency was down; message requeued", "error", err)
		err = d.Nack(false, true)
	case del.Attempt >= c.cfg.MaxAttempts:
		outcome = "dead_lettered"
		log.ErrorContext(ctx, "message dead-lettered after its attempts", "error", err)
		what = deadLetterAttrs(c.cfg.Queue, ErrorKindTransient, del.Attempt)
		err = c.settleVia(ctx, d, c.deadLetter(d, err, ErrorKindTransient, del.Attempt))
	default:
		outcome = "retried"
		tier := min(del.Attempt-1, len(RetryDelays)-1)
		log.WarnContext(ctx, "message failed; retrying later", "error", err, "delay", RetryDelays[tier])
		what = []attribute.KeyValue{attribute.Int("attempt", del.Attempt), attribute.String("delay", RetryDelays[tier].String()),
			attribute.String("retry_queue", RetryQueue(c.cfg.Queue, tier))}
		err = c.settleVia(ctx, d, c.retry(d, err, del.Attempt, tier))
	}
	if err != nil {
		// The channel is gone or the broker refused the retry/dead letter:
		// the message stays unacked and comes back on another channel.
		log.WarnContext(ctx, "could not settle message", "error", err)
	}
	c.metrics.observe(c.cfg.Queue, d.Type, outcome, elapsed)
	log.InfoContext(ctx, "message handled", "outcome", outcome, "duration_ms", float64(elapsed.Microseconds())/1000)
	endConsumeSpan(trace.SpanFromContext(ctx), outcome, cause, what...)
}

// deadLetterAttrs say where a dead letter went and why, for its span.
func deadLetterAttrs(queue, kind string, attempts int) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("dead_letter_queue", events.DeadLetterQueue(queue)),
		attribute.String("error_kind", kind), attribute.Int("attempts", attempts)}
}

// check refuses what no handler can process.
func check(d amqp.Delivery) error {
	if d.MessageId == "" {
		return Permanent(errors.New("missing message_id"))
	}
	if v, ok := d.Headers[HeaderSchemaVersion]; ok {
		n, isInt := intValue(v)
		if !isInt || n != events.SchemaVersion {
			return Permanent(fmt.Errorf("unsupported %s %v", HeaderSchemaVersion, v))
		}
	}
	return nil
}

// handle runs the handler on ds; a panic fails every delivery of the batch
// (transiently), never the process.
func (c *Consumer) handle(ctx context.Context, ds []Delivery) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
			errs = make([]error, len(ds))
			for i := range errs {
				errs[i] = err
			}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
	defer cancel()
	errs = c.handler(ctx, ds)
	if len(errs) != len(ds) {
		panic(fmt.Sprintf("batch handler returned %d results for %d deliveries", len(errs), len(ds)))
	}
	return errs
}

// settleVia acks d once out was confirmed, or nacks it back to the queue.
// While the broker blocks publishing, d is held instead: unacked, it waits
// for the alarm to clear without a worker, so the consumer keeps taking
// the messages it can ack, and without coming straight back to fail again
// (which would spend the queue's delivery limit).
func (c *Consumer) settleVia(ctx context.Context, d amqp.Delivery, out Outgoing) error {
	err := c.pub.Send(ctx, out)
	if errors.Is(err, ErrBlocked) {
		c.log.Warn("broker blocks publishing; message settles once it unblocks",
			"type", d.Type, "message_id", d.MessageId, "error", err)
		c.held.Go(func() { c.settleUnblocked(ctx, d, out) })
		return nil
	}
	return c.ackOrNack(d, err)
}

// settleUnblocked publishes out once the broker unblocks, then acks d, or
// nacks it back to the queue if that fails or ctx ends first. If the
// channel is gone by then, the broker redelivers d anyway.
func (c *Consumer) settleUnblocked(ctx context.Context, d amqp.Delivery, out Outgoing) {
	err := c.conn.WaitUnblocked(ctx)
	if err == nil {
		err = c.pub.Send(ctx, out)
	}
	if err := c.ackOrNack(d, err); err != nil {
		c.log.Warn("could not settle message", "type", d.Type, "message_id", d.MessageId, "error", err)
	}
}

// ackOrNack acks d if sendErr is nil, and nacks it back to the queue
// otherwise.
func (c *Consumer) ackOrNack(d amqp.Delivery, sendErr error) error {
	if sendErr != nil {
		if nackErr := d.Nack(false, true); nackErr != nil {
			return errors.Join(sendErr, nackErr)
		}
		return sendErr
	}
	return d.Ack(false)
}

// waitReady returns once Ready passes or ctx ends.
func (c *Consumer) waitReady(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for c.cfg.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deadLetter is d as it goes to the dead-letter queue: every original
// property kept, the reason added.
func (c *Consumer) deadLetter(d amqp.Delivery, cause error, kind string, attempts int) Outgoing {
	msg := Republish(d)
	msg.Headers[HeaderError] = truncate(cause.Error(), 1024)
	msg.Headers[HeaderErrorKind] = kind
	msg.Headers[HeaderAttempts] = int32(attempts)
	msg.Headers[HeaderOriginalQueue] = c.cfg.Queue
	msg.Headers[HeaderFailedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if msg.MessageId == "" {
		// The publisher needs an id to recognise a return; the original had none.
		msg.MessageId = "missing-" + uuid.NewString()
	}
	return Outgoing{Exchange: "", Key: events.DeadLetterQueue(c.cfg.Queue), Msg: msg}
}

func (c *Consumer) retry(d amqp.Delivery, cause error, attempts, tier int) Outgoing {
	msg := Republish(d)
	msg.Headers[HeaderAttempts] = int32(attempts)
	msg.Headers[HeaderLastError] = truncate(cause.Error(), 1024)
	return Outgoing{Exchange: "", Key: c.conn.RetryQueue(c.cfg.Queue, tier), Msg: msg}
}

// Republish is delivery d as it is published again (a retry, a dead
// letter, a replay): every property and header kept but the headers named
// in drop and the broker's own dead-lettering history, which would only
// grow; persistent, with no expiration and no user id (which the broker
// checks against the publishing user).
func Republish(d amqp.Delivery, drop ...string) amqp.Publishing {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		if k != HeaderDeath && k != HeaderDeliveryCount && !slices.Contains(drop, k) {
			headers[k] = v
		}
	}
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

func toDelivery(d amqp.Delivery) Delivery {
	del := Delivery{
		MessageID:     d.MessageId,
		Type:          d.Type,
		CorrelationID: d.CorrelationId,
		AppID:         d.AppId,
		Timestamp:     d.Timestamp,
		Body:          d.Body,
		Attempt:       1,
	}
	if n, ok := intValue(d.Headers[HeaderAttempts]); ok && n > 0 {
		del.Attempt = int(n) + 1
	}
	if s, ok := d.Headers[HeaderCausationID].(string); ok {
		del.CausationID = s
	}
	if s, ok := d.Headers[HeaderLastError].(string); ok && del.Attempt > 1 {
		del.LastError = s
	}
	return del
}

// intValue reads any AMQP integer type.
func intValue(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), true
	default:
		return 0, false
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
