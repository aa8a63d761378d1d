// Package outbox implements the transactional outbox: a handler writes the
// messages it emits in the same transaction as its state change, and a relay
// publishes them with confirms after commit. A crash between commit and
// publish therefore delays a message; it never loses one.
package outbox

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

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
		}); err != nil {
			return fmt.Errorf("outbox add %s: %w", m.Type, err)
		}
		return nil
	}
	// Several messages go in one statement: one round trip, not one each.
	var p messagingdb.OutboxAddBatchParams
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
	}
	if len(msgs) > 0 {
		if err := q.OutboxAddBatch(ctx, p); err != nil {
			return fmt.Errorf("outbox add %d messages: %w", len(msgs), err)
		}
	}
	return nil
}

// Sender publishes messages with confirms; *rabbit.Publisher is one.
type Sender interface {
	Send(ctx context.Context, outs ...rabbit.Outgoing) error
}

// Relay publishes committed outbox rows. Several relays may share one table:
// rows are claimed with FOR UPDATE SKIP LOCKED.
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
	}
	reg.MustRegister(r.backlog, r.age, r.sent)
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

// publish publishes dispatched messages and marks their rows. A failure
// of either leaves the rows to the poll, which publishes them (again, if
// only the mark failed: the consumers' inboxes drop the copies).
func (r *Relay) publish(ctx context.Context, msgs []events.Message) {
	outs := make([]rabbit.Outgoing, len(msgs))
	ids := make([]uuid.UUID, len(msgs))
	for i, m := range msgs {
		outs[i] = r.outgoing(events.ExchangeOf(m.Type), m)
		ids[i] = m.ID
	}
	if err := r.pub.Send(ctx, outs...); err != nil {
		r.log.Warn("dispatch not confirmed; the poll will publish these rows", "messages", len(msgs), "error", err)
		return
	}
	r.sent.Add(float64(len(msgs)))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pgx.BeginTxFunc(ctx, r.pool, markTx, func(tx pgx.Tx) error {
		return messagingdb.New(tx).OutboxMarkPublished(ctx, ids)
	}); err != nil {
		r.log.Warn("dispatched rows not marked; the poll will publish them again", "messages", len(msgs), "error", err)
	}
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
		n, err := r.flushBatch(ctx, before)
		total += n
		if err != nil || n < int(r.batch) {
			return total, err
		}
	}
}

// markTx begins the relay's transactions. Marking rows published need not
// wait for the disk: if a crash loses the mark, the rows are published once
// more and the consumers' inboxes drop the copies.
var markTx = pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"}

func (r *Relay) flushBatch(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := pgx.BeginTxFunc(ctx, r.pool, markTx, func(tx pgx.Tx) error {
		rows, err := messagingdb.New(tx).OutboxClaim(ctx, messagingdb.OutboxClaimParams{Limit: r.batch, Before: before})
		if err != nil || len(rows) == 0 {
			return err
		}
		// RETURNING has no order: publish in the order rows were written.
		slices.SortFunc(rows, func(a, b messagingdb.OutboxClaimRow) int { return cmp.Compare(a.ID, b.ID) })
		outs := make([]rabbit.Outgoing, len(rows))
		for i, row := range rows {
			outs[i] = r.outgoing(row.Exchange, events.Message{ID: row.MessageID, Type: row.MessageType, CorrelationID: row.CorrelationID,
				CausationID: row.CausationID, Timestamp: row.CreatedAt, Body: row.Body})
		}
		// Rows stay locked while they are published: another relay skips
		// them, and if publishing fails the rollback leaves them unsent.
		if err := r.pub.Send(ctx, outs...); err != nil {
			return err
		}
		n = len(rows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox flush: %w", err)
	}
	r.sent.Add(float64(n))
	return n, nil
}

// outgoing is m as the relay publishes it to exchange, whether from the
// table or from a dispatch.
func (r *Relay) outgoing(exchange string, m events.Message) rabbit.Outgoing {
	headers := amqp.Table{"x-schema-version": int32(events.SchemaVersion)}
	if m.CausationID != "" {
		headers["x-causation-id"] = m.CausationID
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
	if b.Rows == 0 {
		r.age.Set(0)
	} else {
		r.age.Set(time.Since(b.Oldest).Seconds())
	}
}
