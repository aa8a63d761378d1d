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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Add writes msgs to the outbox inside tx. Whoever commits tx wakes the
// relay (Relay.Wake); if nobody does, the relay's poll finds the rows.
func Add(ctx context.Context, tx pgx.Tx, msgs ...events.Message) error {
	if p, ok := tx.(*Deferred); ok {
		for _, m := range msgs {
			if events.ExchangeOf(m.Type) == "" {
				return fmt.Errorf("outbox add %s: unknown message type %q", m.ID, m.Type)
			}
		}
		p.msgs = append(p.msgs, msgs...)
		return nil
	}
	return insert(ctx, tx, msgs...)
}

// Deferred is a transaction whose outbox writes wait for Flush, so that
// the messages of many handlers sharing it (inbox.Batch) are written in one
// statement. It is a pgx.Tx for everything else.
type Deferred struct {
	pgx.Tx
	msgs []events.Message
}

// Defer returns tx with its outbox writes deferred until Flush.
func Defer(tx pgx.Tx) *Deferred { return &Deferred{Tx: tx} }

// Flush writes the messages added so far; call it before committing.
func (d *Deferred) Flush(ctx context.Context) error {
	msgs := d.msgs
	d.msgs = nil
	return insert(ctx, d.Tx, msgs...)
}

func insert(ctx context.Context, tx pgx.Tx, msgs ...events.Message) error {
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
	// Poll is how often the relay looks for rows nobody woke it for.
	Poll    time.Duration
	wake    chan struct{}
	backlog prometheus.Gauge
	age     prometheus.Gauge
	sent    prometheus.Counter
}

// NewRelay returns a relay that publishes rows of pool's outbox through pub,
// stamping appID on them.
func NewRelay(pool *pgxpool.Pool, pub Sender, appID string, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{
		pool: pool, pub: pub, appID: appID, log: log.With("component", "outbox-relay"),
		batch: 200, Poll: time.Second, wake: make(chan struct{}, 1),
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

// Wake makes the relay publish now: call it after committing a transaction
// that added rows. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends, woken by Wake and polling as a fallback for
// rows that another instance committed and could not publish (it crashed,
// or lost the broker). On the way out it flushes once more, briefly, so a
// clean shutdown leaves nothing committed behind.
//
// The relay is not woken by LISTEN/NOTIFY: a notifying commit holds a
// database-wide lock until it is durable, which serialises all the commits
// of the handlers that write the outbox. In-process wake-ups cost nothing.
func (r *Relay) Run(ctx context.Context) error {
	lastGauge := time.Time{}
	for failures := 0; ; {
		if _, err := r.Flush(ctx); err != nil && ctx.Err() == nil {
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
		// After a failure a wake-up does not cut the back-off short: the
		// broker or the database failed a moment ago.
		wake := r.wake
		if failures > 0 {
			wake = nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			_, err := r.Flush(final)
			cancel()
			if err != nil {
				r.log.Warn("final outbox flush incomplete; rows stay for the next start", "error", err)
			}
			return nil
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Flush publishes every unpublished row, a batch at a time, and returns how
// many it published.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.flushBatch(ctx)
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

func (r *Relay) flushBatch(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginTxFunc(ctx, r.pool, markTx, func(tx pgx.Tx) error {
		rows, err := messagingdb.New(tx).OutboxClaim(ctx, r.batch)
		if err != nil || len(rows) == 0 {
			return err
		}
		// RETURNING has no order: publish in the order rows were written.
		slices.SortFunc(rows, func(a, b messagingdb.OutboxClaimRow) int { return cmp.Compare(a.ID, b.ID) })
		outs := make([]rabbit.Outgoing, len(rows))
		for i, row := range rows {
			outs[i] = rabbit.Outgoing{Exchange: row.Exchange, Key: row.MessageType, Msg: r.publishing(row)}
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

func (r *Relay) publishing(row messagingdb.OutboxClaimRow) amqp.Publishing {
	headers := amqp.Table{"x-schema-version": int32(events.SchemaVersion)}
	if row.CausationID != "" {
		headers["x-causation-id"] = row.CausationID
	}
	return amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     row.MessageID.String(),
		Type:          row.MessageType,
		CorrelationId: row.CorrelationID,
		Timestamp:     row.CreatedAt,
		AppId:         r.appID,
		Headers:       headers,
		Body:          row.Body,
	}
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
