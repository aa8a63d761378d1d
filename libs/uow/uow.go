// Package uow is the unit of work of a saga participant: everything that
// writes state and emits messages (a consumer's batch of deliveries, a
// sweep, a decider, a scheduler) does it in one transaction through a Tx,
// whose emitted messages are written to the outbox in that transaction and,
// once it committed, handed to the relay to publish at once. Nothing
// dispatches by hand, so nothing can forget to.
package uow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/tracing"
)

// Tx is a transaction of a unit of work: a pgx.Tx for the participant's
// queries, that also emits messages and defers work until it committed.
type Tx struct {
	pgx.Tx
	// cause is the id of the message being handled, "" outside a consumer.
	cause string
	// trace is the span context what is emitted continues: the handled
	// message's in a consumer, the caller's otherwise; invalid if untraced.
	trace  trace.SpanContext
	msgs   []events.Message
	afters []func()
	// pending are the statements Deferred holds back.
	pending *pgx.Batch
	values  map[any]any
}

// Emit emits the message carrying p, correlated by correlationID (the order
// id of a saga) and, in a consumer, marked as caused by the message being
// handled. It is written to the outbox when the transaction ends, with the
// messages emitted before and after it in one statement, and published
// once the transaction committed.
func (t *Tx) Emit(p events.Payload, correlationID string) error {
	m, err := events.NewMessage(p, correlationID)
	if err != nil {
		return err
	}
	if events.ExchangeOf(m.Type) == "" {
		return fmt.Errorf("emit %s: %q is not a message type of the contract", m.ID, m.Type)
	}
	m.CausationID = t.cause
	if t.trace.IsValid() {
		m.TraceParent, m.TraceState = traceContext(t.trace)
	}
	t.msgs = append(t.msgs, m)
	return nil
}

// AfterCommit runs f once the transaction committed, and never if it did
// not: for metrics and wake-ups, nothing that can fail.
func (t *Tx) AfterCommit(f func()) { t.afters = append(t.afters, f) }

// Value returns what SetValue stored under key in this transaction, or nil:
// what a consumer's prelude and its steps share, such as the rows they
// locked and read.
func (t *Tx) Value(key any) any { return t.values[key] }

// SetValue stores v under key for the rest of the transaction.
func (t *Tx) SetValue(key, v any) {
	if t.values == nil {
		t.values = make(map[any]any)
	}
	t.values[key] = v
}

// Cause returns the id of the message being handled, "" outside a consumer.
func (t *Tx) Cause() string { return t.cause }

// Runner runs units of work on a participant's database.
type Runner struct {
	pool       *pgxpool.Pool
	dispatch   func([]events.Message)
	duplicates *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
}

// NewRunner returns a runner over pool that hands what its transactions
// emitted to dispatch once they committed (outbox.Relay.Dispatch); with a
// nil dispatch the relay's poll finds them, a few seconds later.
func NewRunner(pool *pgxpool.Pool, dispatch func([]events.Message), reg prometheus.Registerer) *Runner {
	r := &Runner{pool: pool, dispatch: dispatch, duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ordersaga_inbox_duplicates_total",
		Help: "Messages skipped because their consumer had handled them already.",
	}, []string{"consumer"}), fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ordersaga_batch_fallbacks_total",
		Help: "Batches whose shared transaction failed (a bad message, a deadlock, a timeout), so that each of their messages was handled again alone.",
	}, []string{"consumer"})}
	reg.MustRegister(r.duplicates, r.fallbacks)
	return r
}

// Pool returns the runner's database, for reads outside a unit of work.
func (r *Runner) Pool() *pgxpool.Pool { return r.pool }

// InTx runs fn in a transaction and commits it if fn returns nil; what fn
// emitted is written last, in one statement, and once committed it is
// published and the after-commit functions run.
func (r *Runner) InTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) (err error) {
	if tracing.Enabled() && trace.SpanContextFromContext(ctx).IsValid() {
		// In a trace, the transaction is a span of it (pgx is not traced).
		var span trace.Span
		ctx, span = tracing.Tracer().Start(ctx, "unit of work")
		defer func() {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	var tx *Tx
	err = pgx.BeginFunc(ctx, r.pool, func(ptx pgx.Tx) error {
		tx = &Tx{Tx: ptx, trace: trace.SpanContextFromContext(ctx)}
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return tx.flush(ctx)
	})
	if err != nil {
		return err
	}
	r.committed(tx)
	return nil
}

// flush writes the emitted messages, in one statement (sent with what
// Deferred still holds back); call it last.
func (t *Tx) flush(ctx context.Context) error {
	if err := outbox.Add(ctx, t, t.msgs...); err != nil {
		return err
	}
	return t.sendPending(ctx)
}

// committed dispatches what tx emitted and runs its after-commit functions.
func (r *Runner) committed(tx *Tx) {
	if r.dispatch != nil && len(tx.msgs) > 0 {
		r.dispatch(tx.msgs)
	}
	for _, f := range tx.afters {
		f()
	}
}

// traceContext returns the traceparent and tracestate headers of sc.
func traceContext(sc trace.SpanContext) (traceparent, tracestate string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"], c["tracestate"]
}
