// Package conformance is the suite every saga participant passes against
// its real handlers, the way every watermill Pub/Sub passes its universal
// tests: a duplicate delivery is a no-op, a poison message goes to the
// queue's .dlq with its reason, a database outage pauses consumption
// without spending attempts, what a crash left between commit and publish
// is published by the relay's poll, and a handler panic costs only its own
// message. Each runs a real participant (participant.Start and Run) on a
// fresh database and broker vhost.
package conformance

import (
	"cmp"
	"context"

	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/uow/uowtest"
)

// Participant is the participant under test, described as its main.go
// wires it.
type Participant struct {
	// Name is the participant's name (saga/saga.conf).
	Name string
	// Schema is its database schema (db.Order(), say).
	Schema db.Migrations
	// Topology is its part of the saga's topology: saga.TopologyOf(Name).
	Topology events.Topology
	// Handlers returns its real handlers, built on p as main.go builds
	// them (the service over p.Runner).
	Handlers func(p *participant.Participant) []uow.Handler
	// Saga returns the messages of one new saga that the participant
	// consumes, with their correlation id: valid, of every type its queues
	// are bound to, each succeeding when handled in this order, and, if
	// it publishes (saga/saga.conf), at least one of them emitting a message.
	Saga func() (correlationID string, payloads []events.Payload)
}

// Run runs the suite on p.
func Run(t *testing.T, p Participant) {
	t.Run("SagaCoversTheSubscriptions", func(t *testing.T) { t.Parallel(); sagaCoversTheSubscriptions(t, p) })
	t.Run("DuplicateDeliveryIsANoOp", func(t *testing.T) { t.Parallel(); duplicateDeliveryIsANoOp(t, p) })
	t.Run("PoisonGoesToTheDeadLetterQueue", func(t *testing.T) { t.Parallel(); poisonGoesToTheDeadLetterQueue(t, p) })
	t.Run("DatabaseOutagePausesWithoutSpendingAttempts", func(t *testing.T) { t.Parallel(); databaseOutagePauses(t, p) })
	t.Run("CrashBetweenCommitAndPublishIsRepublished", func(t *testing.T) { t.Parallel(); crashBeforePublishIsRepublished(t, p) })
	t.Run("PanicCostsOnlyItsOwnMessage", func(t *testing.T) { t.Parallel(); panicCostsOnlyItsOwnMessage(t, p) })
}

// running is a participant started for one test.
type running struct {
	*participant.Participant
	dbURL    string
	broker   testinfra.Broker
	amqp     *amqp.Connection
	handlers []uow.Handler
	queues   map[string]string // message type → the queue its handler consumes
}

const maxAttempts = 3

// options changes how start runs a participant.
type options struct {
	// wrap, when set, wraps every handler.
	wrap func(uow.HandleFunc) uow.HandleFunc
	// workers, when set, is how many batches each consumer handles at once.
	workers int
	// before, when set, runs once the topology is declared and before the
	// participant consumes.
	before func(r *running)
}

// start starts p on a fresh database and vhost and stops it when the test
// ends.
func start(t *testing.T, p Participant, o options) *running {
	t.Helper()
	r := &running{dbURL: testinfra.Database(t), broker: testinfra.VHost(t), queues: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	part, err := participant.Start(ctx, participant.Config{
		Name: p.Name, HTTPAddr: "127.0.0.1:0", AMQPURL: r.broker.AMQPURL, DatabaseURL: r.dbURL,
		StartupTimeout: 30 * time.Second, PublishTimeout: 5 * time.Second, MaxConns: 8,
		MessageRetention: time.Hour,
		ConsumerTuning:   rabbit.ConsumerTuning{MaxAttempts: maxAttempts, Workers: cmp.Or(o.workers, 4), MaxBatch: 32, Prefetch: 64},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), p.Schema, p.Topology)
	require.NoError(t, err, "start %s", p.Name)
	r.Participant = part
	hs := p.Handlers(part)
	if o.wrap != nil {
		for i := range hs {
			hs[i] = hs[i].Wrap(o.wrap)
		}
	}
	part.Handle(hs...)
	r.handlers = hs
	router, err := uow.NewRouter(part.Runner, p.Topology, hs...)
	require.NoError(t, err, "%s's handlers match its subscriptions", p.Name)
	for _, q := range router.Queues() {
		for _, typ := range subscribed(p.Topology, q) {
			r.queues[typ] = q
		}
	}
	conn, err := amqp.Dial(r.broker.AMQPURL)
	require.NoError(t, err)
	r.amqp = conn
	if o.before != nil {
		o.before(r)
	}
	done := make(chan error, 1)
	go func() { done <- part.Run(ctx, part.Engine()) }()
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		assert.NoError(t, <-done, "%s stops cleanly", p.Name)
	})
	return r
}

// subscribed returns the types bound to queue q of t.
func subscribed(t events.Topology, q string) []string {
	var types []string
	for _, queue := range t.Queues {
		if queue.Name == q && !queue.IfMissing {
			for _, b := range queue.Bindings {
				types = append(types, b.Key)
			}
		}
	}
	return types
}

// message builds the message carrying payload.
func message(t testing.TB, correlationID string, payload events.Payload) events.Message {
	t.Helper()
	m, err := events.NewMessage(payload, correlationID)
	require.NoError(t, err)
	return m
}

// publish publishes m to its exchange, as its producer's relay does, and
// waits for the broker's confirm.
func (r *running) publish(t testing.TB, m events.Message) {
	t.Helper()
	r.publishTo(t, events.ExchangeOf(m.Type), m.Type, m.Type, m.ID.String(), m.Body)
}

func (r *running) publishTo(t testing.TB, exchange, key, typ, id string, body []byte) {
	t.Helper()
	ch, err := r.amqp.Channel()
	require.NoError(t, err)
	defer ch.Close()
	require.NoError(t, ch.Confirm(false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: id, Type: typ,
		CorrelationId: "conformance", Timestamp: time.Now(), AppId: "conformance",
		Headers: amqp.Table{"x-schema-version": int32(events.SchemaVersion)}, Body: body,
	})
	require.NoError(t, err)
	acked, err := dc.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, acked, "the broker confirmed %s", typ)
}

// handled reports whether the consumer of m's type has handled m (its
// inbox has it).
func (r *running) handled(t testing.TB, m events.Message) bool {
	t.Helper()
	var n int
	err := r.Pool.QueryRow(context.Background(), "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
		r.queues[m.Type], m.ID.String()).Scan(&n)
	return err == nil && n == 1
}

// waitHandled waits until every one of msgs was handled.
func (r *running) waitHandled(t testing.TB, what string, msgs ...events.Message) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range msgs {
			if !r.handled(t, m) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "%s: %d messages handled", what, len(msgs))
}

func (r *running) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, r.Pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// queueLength is the number of ready messages in queue.
func (r *running) queueLength(t testing.TB, queue string) int {
	t.Helper()
	ch, err := r.amqp.Channel()
	require.NoError(t, err)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err, "queue %s", queue)
	return q.Messages
}

// counter sums the samples of the counter or gauge called name whose
// labels include labels.
func (r *running) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := r.Registry.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

func sagaCoversTheSubscriptions(t *testing.T, p Participant) {
	var want []string
	for _, q := range p.Topology.Queues {
		if !q.IfMissing {
			want = append(want, subscribed(p.Topology, q.Name)...)
		}
	}
	_, payloads := p.Saga()
	var got []string
	for _, pl := range payloads {
		if !slices.Contains(got, pl.MessageType()) {
			got = append(got, pl.MessageType())
		}
	}
	assert.ElementsMatch(t, want, got, "the fixtures hold one message of each type %s consumes", p.Name)
}

// duplicateDeliveryIsANoOp delivers each message of a saga twice: the
// second delivery is acknowledged without a second effect.
func duplicateDeliveryIsANoOp(t *testing.T, p Participant) {
	r := start(t, p, options{})
	corr, payloads := p.Saga()
	for _, pl := range payloads {
		m := message(t, corr, pl)
		r.publish(t, m)
		r.waitHandled(t, m.Type, m)
		outbox := r.count(t, "SELECT count(*) FROM outbox")
		queue := r.queues[m.Type]
		before := r.counter(t, "ordersaga_inbox_duplicates_total", map[string]string{"consumer": queue})
		r.publish(t, m)
		require.Eventually(t, func() bool {
			return r.counter(t, "ordersaga_inbox_duplicates_total", map[string]string{"consumer": queue}) > before
		}, 30*time.Second, 20*time.Millisecond, "%s: the second delivery was recognised as a duplicate", m.Type)
		assert.Equal(t, outbox, r.count(t, "SELECT count(*) FROM outbox"), "%s: the duplicate emitted nothing", m.Type)
		assert.Equal(t, 1, r.count(t, "SELECT count(*) FROM inbox WHERE message_id = $1", m.ID.String()),
			"%s: recorded once", m.Type)
		assert.Zero(t, r.queueLength(t, events.DeadLetterQueue(queue)), "%s: nothing dead-lettered", m.Type)
	}
}

// poisonGoesToTheDeadLetterQueue sends, to each queue, a body that is not
// JSON and a type outside the contract: both reach the queue's .dlq at
// once with their reason, and the next message is handled.
func poisonGoesToTheDeadLetterQueue(t *testing.T, p Participant) {
	r := start(t, p, options{})
	corr, payloads := p.Saga()
	for _, q := range uniqueQueues(r) {
		typ := subscribed(p.Topology, q)[0]
		r.publishTo(t, events.ExchangeOf(typ), typ, typ, "poison-body-"+q, []byte("not json"))
		r.publishTo(t, "", q, "order.shipped", "poison-type-"+q, []byte(`{}`))
		for _, want := range []struct{ id, reason string }{
			{"poison-body-" + q, "body"},
			{"poison-type-" + q, "unknown message type"},
		} {
			d := r.get(t, events.DeadLetterQueue(q))
			assert.Equal(t, want.id, d.MessageId, "%s: the poison message keeps its id", q)
			assert.Equal(t, "permanent", d.Headers["x-error-kind"], "%s: %s", q, want.id)
			assert.Contains(t, fmt.Sprint(d.Headers["x-error"]), want.reason, "%s: %s says why", q, want.id)
		}
		assert.Zero(t, r.queueLength(t, retryQueue(q)), "%s: no retry for what can never succeed", q)
	}
	first := message(t, corr, payloads[0])
	r.publish(t, first)
	r.waitHandled(t, "the message after the poison", first)
}

func uniqueQueues(r *running) []string {
	var qs []string
	for _, q := range r.queues {
		if !slices.Contains(qs, q) {
			qs = append(qs, q)
		}
	}
	slices.Sort(qs)
	return qs
}

// retryQueue is the first retry tier of q on the test broker (3.10 or
// later: the quorum tier).
func retryQueue(q string) string { return rabbit.RetryQueue(q, 0) }

// get waits for a message on queue and takes it.
func (r *running) get(t testing.TB, queue string) amqp.Delivery {
	t.Helper()
	ch, err := r.amqp.Channel()
	require.NoError(t, err)
	defer ch.Close()
	var d amqp.Delivery
	require.Eventually(t, func() bool {
		var ok bool
		d, ok, err = ch.Get(queue, true)
		require.NoError(t, err)
		return ok
	}, 30*time.Second, 20*time.Millisecond, "a message on %s", queue)
	return d
}

// databaseOutagePauses closes the participant's database while a message
// arrives: the consumer pauses, the message spends no attempt (no retry,
// no dead letter), and it is handled once the database is back.
func databaseOutagePauses(t *testing.T, p Participant) {
	r := start(t, p, options{})
	corr, payloads := p.Saga()
	m := message(t, corr, payloads[0])
	testinfra.AllowConnections(t, r.dbURL, false)
	restored := false
	t.Cleanup(func() {
		if !restored {
			testinfra.AllowConnections(t, r.dbURL, true)
		}
	})
	r.publish(t, m)
	queue := r.queues[m.Type]
	require.Eventually(t, func() bool {
		return r.counter(t, "ordersaga_consumer_paused_batches", map[string]string{"queue": queue}) > 0
	}, 30*time.Second, 20*time.Millisecond, "the consumer found its database down and paused")
	assert.Zero(t, r.queueLength(t, retryQueue(queue)), "no attempt spent on the outage")
	assert.Zero(t, r.queueLength(t, events.DeadLetterQueue(queue)), "nothing dead-lettered for the outage")
	testinfra.AllowConnections(t, r.dbURL, true)
	restored = true
	r.waitHandled(t, "after the outage", m)
	assert.Positive(t, r.counter(t, "ordersaga_messages_consumed_total", map[string]string{"queue": queue, "outcome": "paused"}),
		"the message went back to its queue")
	assert.Zero(t, r.counter(t, "ordersaga_messages_consumed_total", map[string]string{"queue": queue, "outcome": "retried"}),
		"the message was never retried")
}

// crashBeforePublishIsRepublished commits the effects of a saga's messages
// through the real handlers but loses their dispatch to the relay, as a
// crash between commit and publish does: the running participant's relay
// finds the rows by polling and publishes them.
func crashBeforePublishIsRepublished(t *testing.T, p Participant) {
	// A pure consumer (no publishes line in saga/saga.conf) emits nothing
	// that a crash could leave behind.
	if !slices.ContainsFunc(p.Topology.Exchanges, func(e events.Exchange) bool { return !e.IfMissing }) {
		t.Skipf("%s publishes to no exchange: nothing to republish", p.Name)
	}
	r := start(t, p, options{})
	// A runner that never dispatches: what it commits is left to the poll.
	crashed := uow.NewRunner(r.Pool, nil, prometheus.NewRegistry())
	router, err := uow.NewRouter(crashed, p.Topology, r.handlers...)
	require.NoError(t, err)
	corr, payloads := p.Saga()
	for _, pl := range payloads {
		d := uowtest.Delivery(t, corr, pl)
		errs := router.Handler(r.queues[d.Type])(context.Background(), []rabbit.Delivery{d})
		require.NoError(t, errs[0], "%s handled", d.Type)
	}
	rows, err := r.Pool.Query(context.Background(), "SELECT message_id::text, message_type FROM outbox")
	require.NoError(t, err)
	emitted := map[string]string{}
	for rows.Next() {
		var id, typ string
		require.NoError(t, rows.Scan(&id, &typ))
		emitted[id] = typ
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, emitted, "the saga's messages emit something")
	require.Eventually(t, func() bool {
		return r.count(t, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
	}, 60*time.Second, 50*time.Millisecond, "the relay's poll published what no dispatch did")
	// Each reached a queue bound to its type (declared, where missing, by
	// the participant itself); an event with several consumers reached each.
	published := map[string]bool{}
	for _, q := range p.Topology.Queues {
		if !q.IfMissing {
			continue
		}
		for r.queueLength(t, q.Name) > 0 {
			d := r.get(t, q.Name)
			assert.Equal(t, emitted[d.MessageId], d.Type, "published as written")
			published[d.MessageId] = true
		}
	}
	for id := range published {
		delete(emitted, id)
	}
	assert.Empty(t, emitted, "every emitted message was published")
}

// panicCostsOnlyItsOwnMessage makes the handler panic on one message of
// a batch, every time: its neighbours are handled without a retry, it is
// retried and then dead-lettered with the panic as its reason, and the
// participant keeps running.
func panicCostsOnlyItsOwnMessage(t *testing.T, p Participant) {
	var msgs []events.Message
	for range 8 {
		corr, payloads := p.Saga()
		msgs = append(msgs, message(t, corr, payloads[0]))
	}
	bomb := msgs[3].ID.String()
	wrap := func(next uow.HandleFunc) uow.HandleFunc {
		return func(ctx context.Context, tx *uow.Tx, pl events.Payload) error {
			if tx.Cause() == bomb {
				panic("conformance: handler bug")
			}
			return next(ctx, tx, pl)
		}
	}
	// Queued before one worker consumes, so that they arrive as one batch.
	r := start(t, p, options{wrap: wrap, workers: 1, before: func(r *running) {
		for _, m := range msgs {
			r.publish(t, m)
		}
	}})
	r.waitHandled(t, "the neighbours of the panic", slices.Concat(msgs[:3], msgs[4:])...)
	queue := r.queues[msgs[3].Type]
	d := r.get(t, events.DeadLetterQueue(queue))
	assert.Equal(t, bomb, d.MessageId, "the message that panicked is dead-lettered")
	assert.Equal(t, "transient", d.Headers["x-error-kind"], "after its attempts")
	assert.Contains(t, fmt.Sprint(d.Headers["x-error"]), "handler panic: conformance: handler bug")
	assert.False(t, r.handled(t, msgs[3]), "it left no effect")
	assert.Equal(t, float64(maxAttempts-1),
		r.counter(t, "ordersaga_messages_consumed_total", map[string]string{"queue": queue, "outcome": "retried"}),
		"only the message that panicked was retried")
}
