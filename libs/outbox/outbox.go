// Package outbox implements the transactional outbox: a handler writes the
// messages it emits in the same transaction as its state change, and a relay
// publishes them with confirms after commit. A crash between commit and
// publish therefore delays a message; it never loses one.
package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Add writes msgs to the outbox inside tx, in one statement. Whoever
// commits tx hands the messages to Relay.Dispatch, which publishes them at
// once; if nobody does (or the process dies first), the relay's poll finds
// the rows. Participants write through a unit of work (libs/uow), which
// does both.
func Add(ctx context.Context, tx pgx.Tx, msgs ...events.Message) error {
	q := messagingdb.New(tx)
	if len(msgs) == 1 {
		m := msgs[0]
		exchange := events.ExchangeOf(m.Type)
		if exchange == "" {
			return fmt.Errorf("outbox add %s: unknown message type %q", m.ID, m.Type)
		}
		if err := q.OutboxAdd(ctx, messagingdb.OutboxAddParams{
			MessageID:     m.ID,
			MessageType:   m.Type,
			Exchange:      exchange,
			CorrelationID: m.CorrelationID,
			CausationID:   m.CausationID,
			Body:          m.Body,
			CreatedAt:     m.Timestamp,
			Traceparent:   m.TraceParent,
			Tracestate:    m.TraceState,
		}); err != nil {
			return fmt.Errorf("outbox add %s: %w", m.Type, err)
		}
		return nil
	}
	// Several messages go in one statement: one round trip, not one each.
	// The trace context columns are sized at once: untraced, they cost two
	// allocations per batch.
	p := messagingdb.OutboxAddBatchParams{Traceparents: make([]string, 0, len(msgs)), Tracestates: make([]string, 0, len(msgs))}
	for _, m := range msgs {
		exchange := events.ExchangeOf(m.Type)
		if exchange == "" {
			return fmt.Errorf("outbox add %s: unknown message type %q", m.ID, m.Type)
		}
		p.MessageIds = append(p.MessageIds, m.ID)
		p.MessageTypes = append(p.MessageTypes, m.Type)
		p.Exchanges = append(p.Exchanges, exchange)
		p.CorrelationIds = append(p.CorrelationIds, m.CorrelationID)
		p.CausationIds = append(p.CausationIds, m.CausationID)
		p.Bodies = append(p.Bodies, m.Body)
		p.CreatedAts = append(p.CreatedAts, m.Timestamp)
		p.Traceparents = append(p.Traceparents, m.TraceParent)
		p.Tracestates = append(p.Tracestates, m.TraceState)
	}
	if len(msgs) > 0 {
		if err := q.OutboxAddBatch(ctx, p); err != nil {
			return fmt.Errorf("outbox add %d messages: %w", len(msgs), err)
		}
	}
	return nil
}

// Sender publishes messages with confirms, and looks up exchanges;
// *rabbit.Publisher is one. Send reports messages the broker returned as
// unroutable with a *rabbit.ReturnedError.
type Sender interface {
	Send(ctx context.Context, outs ...rabbit.Outgoing) error
	ExchangeExists(ctx context.Context, exchange string) (bool, error)
}

// Relay publishes committed outbox rows. Several relays may share one table:
// rows are claimed with FOR UPDATE SKIP LOCKED.
//
// A row the broker cannot take, because it returns it as unroutable (no
// queue is bound for its type) or because its exchange does not exist, is
// parked: set aside with the reason (outbox.parked_at, park_reason),
// counted (ordersaga_outbox_parked_total, ordersaga_outbox_parked_messages)
// and logged once, while the rows around it are published. Parked rows stay
// until an operator, having fixed the route, un-parks them:
//
//	UPDATE outbox SET parked_at = NULL, park_reason = NULL WHERE parked_at IS NOT NULL;
//
// and the next poll publishes them. Retention never prunes a parked row.
type Relay struct {
	pool  *pgxpool.Pool
	pub   Sender
	appID string
	log   *slog.Logger
	batch int32
	// Poll is how often the relay looks for rows that were not dispatched
	// (a dispatch failed, or its process died), and Grace how old a row
	// must be before the poll takes it from its dispatch.
	Poll, Grace time.Duration
	dispatch    chan []events.Message
	backlog     prometheus.Gauge
	age         prometheus.Gauge
	sent        prometheus.Counter
	parked      prometheus.Gauge
	parkedRows  prometheus.Counter
}

// NewRelay returns a relay that publishes rows of pool's outbox through pub,
// stamping appID on them.
func NewRelay(pool *pgxpool.Pool, pub Sender, appID string, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{
		pool: pool, pub: pub, appID: appID, log: log.With("component", "outbox-relay"),
		batch: 200, Poll: time.Second, Grace: 5 * time.Second,
		dispatch: make(chan []events.Message, 4096),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordersaga_outbox_backlog_messages", Help: "Outbox rows not yet published.",
		}),
		age: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordersaga_outbox_oldest_age_seconds", Help: "Age of the oldest unpublished outbox row.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordersaga_outbox_published_total", Help: "Outbox rows published and confirmed.",
		}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordersaga_outbox_parked_messages", Help: "Outbox rows set aside because the broker cannot route them.",
		}),
		parkedRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordersaga_outbox_parked_total", Help: "Outbox rows parked because the broker could not route them.",
		}),
	}
	reg.MustRegister(r.backlog, r.age, r.sent, r.parked, r.parkedRows)
	return r
}

// Dispatch hands the relay messages whose transaction has just committed,
// to publish at once from memory and then mark published: the saga's next
// step does not wait for the relay to find them in the table. It never
// blocks; a dispatch that cannot be taken, or fails, is left to the poll.
func (r *Relay) Dispatch(msgs []events.Message) {
	if len(msgs) == 0 {
		return
	}
	select {
	case r.dispatch <- msgs:
	default:
	}
}

// Run publishes until ctx ends: what is dispatched at once, and, polling,
// the rows older than Grace that no dispatch published. On the way out it
// publishes what is still dispatched and flushes the table once more,
// briefly, so a clean shutdown leaves nothing committed behind.
//
// Rows are not found through LISTEN/NOTIFY: a notifying commit holds a
// database-wide lock until it is durable, which serialises the commits of
// all the handlers that write the outbox.
func (r *Relay) Run(ctx context.Context) error {
	dispatched := make(chan struct{})
	go func() { defer close(dispatched); r.dispatchLoop(ctx) }()
	lastGauge := time.Time{}
	for failures := 0; ; {
		if _, err := r.flush(ctx, false); err != nil && ctx.Err() == nil {
			failures++
			r.log.Warn("outbox flush failed; will retry", "error", err)
		} else {
			failures = 0
		}
		if time.Since(lastGauge) > 5*time.Second {
			r.updateGauges(ctx)
			lastGauge = time.Now()
		}
		wait := r.Poll
		if failures > 0 {
			wait = min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			<-dispatched
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			_, err := r.Flush(final)
			cancel()
			if err != nil {
				r.log.Warn("final outbox flush incomplete; rows stay for the next start", "error", err)
			}
			return nil
		case <-timer.C:
		}
		timer.Stop()
	}
}

// dispatchLoop publishes dispatched messages, several dispatches per
// confirm round trip, until ctx ends and what was dispatched before is out.
func (r *Relay) dispatchLoop(ctx context.Context) {
	work := context.WithoutCancel(ctx)
	for {
		var msgs []events.Message
		select {
		case msgs = <-r.dispatch:
		case <-ctx.Done():
			select {
			case msgs = <-r.dispatch:
			default:
				return
			}
		}
		for more := true; more && len(msgs) < int(r.batch); {
			select {
			case m := <-r.dispatch:
				msgs = append(msgs, m...)
			default:
				more = false
			}
		}
		r.publish(work, msgs)
	}
}

// publish publishes dispatched messages and marks their rows, parking
// those the broker cannot take. A failure of either leaves the rows to the
// poll, which publishes them (again, if only the mark failed: the
// consumers' inboxes drop the copies).
func (r *Relay) publish(ctx context.Context, msgs []events.Message) {
	outs := make([]rabbit.Outgoing, len(msgs))
	var spans []trace.Span
	for i, m := range msgs {
		outs[i], spans = r.outgoing(ctx, events.ExchangeOf(m.Type), m, spans)
	}
	unsendable, err := r.send(ctx, outs)
	rabbit.EndSpans(spans, err)
	if err != nil {
		r.log.Warn("dispatch not confirmed; the poll will publish these rows", "messages", len(msgs), "error", err)
		return
	}
	ids := make([]uuid.UUID, 0, len(msgs))
	for _, m := range msgs {
		if _, ok := unsendable[m.ID.String()]; !ok {
			ids = append(ids, m.ID)
		}
	}
	r.sent.Add(float64(len(ids)))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var parked []messagingdb.OutboxParkRow
	if err := pgx.BeginTxFunc(ctx, r.pool, markTx, func(tx pgx.Tx) error {
		q := messagingdb.New(tx)
		if len(ids) > 0 {
			if err := q.OutboxMarkPublished(ctx, ids); err != nil {
				return err
			}
		}
		parked, err = park(ctx, q, unsendable)
		return err
	}); err != nil {
		r.log.Warn("dispatched rows not marked; the poll will publish them again", "messages", len(msgs), "error", err)
		return
	}
	r.logParked(parked)
}

// send publishes outs and reports, by message id, why the broker could not
// take those it could not: it returned them as unroutable, or their
// exchange does not exist. It returns an error, and outs are to be tried
// again, only when that is all it can say of a failure.
//
// A publish to a missing exchange closes the channel, which fails every
// message in flight on it: the others are published again, and those that
// the broker had confirmed before reach their consumers twice (their
// inboxes drop the copies).
func (r *Relay) send(ctx context.Context, outs []rabbit.Outgoing) (unsendable map[string]string, err error) {
	unsendable = map[string]string{}
	for len(outs) > 0 {
		err := r.pub.Send(ctx, outs...)
		if err == nil {
			return unsendable, nil
		}
		var returned *rabbit.ReturnedError
		if errors.As(err, &returned) {
			// The broker confirmed every message; it routed all but these.
			for id, why := range returned.Returned {
				unsendable[id] = "unroutable: " + why
			}
			return unsendable, nil
		}
		missing, lookErr := r.missingExchanges(ctx, outs)
		if lookErr != nil || len(missing) == 0 {
			return nil, errors.Join(err, lookErr)
		}
		outs = slices.DeleteFunc(slices.Clone(outs), func(o rabbit.Outgoing) bool {
			if missing[o.Exchange] {
				unsendable[o.Msg.MessageId] = fmt.Sprintf("exchange %q not found", o.Exchange)
				return true
			}
			return false
		})
	}
	return unsendable, nil
}

// missingExchanges looks up the exchanges of outs and returns those that do
// not exist.
func (r *Relay) missingExchanges(ctx context.Context, outs []rabbit.Outgoing) (map[string]bool, error) {
	missing := map[string]bool{}
	seen := map[string]bool{}
	for _, o := range outs {
		if seen[o.Exchange] {
			continue
		}
		seen[o.Exchange] = true
		ok, err := r.pub.ExchangeExists(ctx, o.Exchange)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing[o.Exchange] = true
		}
	}
	return missing, nil
}

// park sets aside the rows of unsendable (message id → reason) and returns
// those it parked, not those parked already.
func park(ctx context.Context, q *messagingdb.Queries, unsendable map[string]string) ([]messagingdb.OutboxParkRow, error) {
	if len(unsendable) == 0 {
		return nil, nil
	}
	var p messagingdb.OutboxParkParams
	for id, why := range unsendable {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("park outbox row %q: %w", id, err)
		}
		p.MessageIds = append(p.MessageIds, u)
		p.Reasons = append(p.Reasons, why)
	}
	rows, err := q.OutboxPark(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("park %d outbox rows: %w", len(unsendable), err)
	}
	return rows, nil
}

// logParked logs and counts rows once their parking committed.
func (r *Relay) logParked(rows []messagingdb.OutboxParkRow) {
	for _, row := range rows {
		r.log.Error("outbox row parked: the broker cannot take it; it stays in the outbox until un-parked",
			"message_id", row.MessageID, "type", row.MessageType, "exchange", row.Exchange, "reason", row.Reason)
	}
	r.parkedRows.Add(float64(len(rows)))
}

// Flush publishes every unpublished row, however young, a batch at a time,
// and returns how many it published.
func (r *Relay) Flush(ctx context.Context) (int, error) { return r.flush(ctx, true) }

// flush publishes unpublished rows, all of them or those older than Grace,
// a batch at a time.
func (r *Relay) flush(ctx context.Context, all bool) (int, error) {
	total := 0
	for {
		before := time.Now().Add(-r.Grace)
		if all {
			before = time.Now().Add(time.Hour) // clocks of other writers may run ahead
		}
		claimed, published, err := r.flushBatch(ctx, before)
		total += published
		if err != nil || claimed < int(r.batch) {
			return total, err
		}
	}
}

// markTx begins the relay's transactions. Marking rows published need not
// wait for the disk: if a crash loses the mark, the rows are published once
// more and the consumers' inboxes drop the copies.
var markTx = pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"}

// flushBatch claims a batch of rows written before before, publishes them
// and parks those the broker cannot take, and returns how many rows it
// claimed and how many of them it published.
func (r *Relay) flushBatch(ctx context.Context, before time.Time) (claimed, published int, err error) {
	var parked []messagingdb.OutboxParkRow
	err = pgx.BeginTxFunc(ctx, r.pool, markTx, func(tx pgx.Tx) error {
		q := messagingdb.New(tx)
		rows, err := q.OutboxClaim(ctx, messagingdb.OutboxClaimParams{Limit: r.batch, Before: before})
		if err != nil || len(rows) == 0 {
			return err
		}
		// RETURNING has no order: publish in the order rows were written.
		slices.SortFunc(rows, func(a, b messagingdb.OutboxClaimRow) int { return cmp.Compare(a.ID, b.ID) })
		outs := make([]rabbit.Outgoing, len(rows))
		var spans []trace.Span
		for i, row := range rows {
			outs[i], spans = r.outgoing(ctx, row.Exchange, events.Message{ID: row.MessageID, Type: row.MessageType, CorrelationID: row.CorrelationID,
				CausationID: row.CausationID, Timestamp: row.CreatedAt, Body: row.Body,
				TraceParent: row.Traceparent, TraceState: row.Tracestate}, spans)
		}
		// Rows stay locked while they are published: another relay skips
		// them, and if publishing fails the rollback leaves them unsent.
		unsendable, err := r.send(ctx, outs)
		rabbit.EndSpans(spans, err)
		if err != nil {
			return err
		}
		if parked, err = park(ctx, q, unsendable); err != nil {
			return err
		}
		claimed, published = len(rows), len(rows)-len(unsendable)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("outbox flush: %w", err)
	}
	r.sent.Add(float64(published))
	r.logParked(parked)
	return claimed, published, nil
}

// outgoing is m as the relay publishes it to exchange, whether from the
// table or from a dispatch. A traced m is published by a span of its trace,
// appended to spans, that the caller ends once the broker answered.
func (r *Relay) outgoing(ctx context.Context, exchange string, m events.Message, spans []trace.Span) (rabbit.Outgoing, []trace.Span) {
	out := r.message(exchange, m)
	if span := rabbit.PublishTraced(ctx, &out, m.TraceParent, m.TraceState); span.IsRecording() {
		spans = append(spans, span)
	}
	return out, spans
}

func (r *Relay) message(exchange string, m events.Message) rabbit.Outgoing {
	headers := amqp.Table{rabbit.HeaderSchemaVersion: int32(events.SchemaVersion)}
	if m.CausationID != "" {
		headers[rabbit.HeaderCausationID] = m.CausationID
	}
	return rabbit.Outgoing{Exchange: exchange, Key: m.Type, Msg: amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     m.ID.String(),
		Type:          m.Type,
		CorrelationId: m.CorrelationID,
		Timestamp:     m.Timestamp,
		AppId:         r.appID,
		Headers:       headers,
		Body:          m.Body,
	}}
}

func (r *Relay) updateGauges(ctx context.Context) {
	b, err := messagingdb.New(r.pool).OutboxBacklog(ctx)
	if err != nil {
		return
	}
	r.backlog.Set(float64(b.Rows))
	r.parked.Set(float64(b.Parked))
	if b.Rows == 0 {
		r.age.Set(0)
	} else {
		r.age.Set(time.Since(b.Oldest).Seconds())
	}
}
