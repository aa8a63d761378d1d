// Package retention prunes what a participant keeps of the messages it
// handled and published once they are older than its retention
// (MESSAGE_RETENTION, contract §1): published outbox rows, by the time they
// were published, and inbox records, by the time their message was handled.
// Without it both tables grow by every message for ever.
//
// What the retention means:
//
//   - The timeline (GET /api/orders/{id}/timeline) is read from these two
//     tables: an entry older than the retention disappears from it. The
//     orders and payments themselves are never pruned.
//   - Deduplication lasts as long as the retention. A copy of a message that
//     arrives after its inbox record was pruned (a redelivery dead-lettered
//     by the broker's delivery limit and replayed with sagactl, or a replay
//     run twice) is handled as new: its handler runs again, and a new inbox
//     record (a new timeline entry) is written. (A dead letter whose handling
//     failed has no inbox record at any age: its transaction rolled back.)
//     The handlers' own state guards keep such a copy harmless:
//     order-service's create finds the order (its id is the primary key,
//     INSERT … ON CONFLICT DO NOTHING) and changes and emits nothing; its
//     cancel finds the order CANCELLED or FAILED and leaves it (conditional
//     transition), emitting nothing; payment-service's charge finds the
//     order's payment (one per order id, ON CONFLICT DO NOTHING) and charges
//     nothing and emits nothing. The retention should outlast the time a copy
//     can still arrive (retry tiers, dead letters awaiting replay).
//   - Unpublished outbox rows are never pruned, parked ones included: an
//     operator un-parks or deletes those (see outbox.Relay).
//
// Rows are deleted in small batches, oldest first, one short statement each,
// found through an index (outbox_published, inbox_processed): no long
// lock, nothing a handler waits for (handlers insert new rows; the relay
// claims only unpublished ones). SKIP LOCKED lets the pruners of several
// instances share the work.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
)

// Pruner prunes one database's outbox and inbox.
type Pruner struct {
	pool      *pgxpool.Pool
	retention time.Duration
	log       *slog.Logger
	pruned    *prometheus.CounterVec
	// Batch is how many rows one statement deletes at most, and Every how
	// often the pruner looks for rows older than the retention.
	Batch int32
	Every time.Duration
}

// New returns a pruner of pool's outbox and inbox that keeps retention's
// worth of rows, counting what it prunes in reg.
func New(pool *pgxpool.Pool, retention time.Duration, log *slog.Logger, reg prometheus.Registerer) *Pruner {
	p := &Pruner{
		pool: pool, retention: retention, log: log.With("component", "retention"),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_messages_pruned_total",
			Help: "Rows deleted because they were older than MESSAGE_RETENTION, by table (outbox: published messages, inbox: handled ones).",
		}, []string{"table"}),
		Batch: 1000,
		// A tenth of the retention, so the tables hold at most about 1.1
		// times the retention's worth; at least a second, at most a minute.
		Every: min(max(retention/10, time.Second), time.Minute),
	}
	for _, table := range []string{"outbox", "inbox"} {
		p.pruned.WithLabelValues(table)
	}
	reg.MustRegister(p.pruned)
	return p
}

// Run prunes every Every until ctx ends. A failed round is logged and
// tried again at the next.
func (p *Pruner) Run(ctx context.Context) error {
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		if _, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("pruning old messages failed; will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pruned counts the rows one Prune deleted, by table.
type Pruned struct {
	Outbox, Inbox int64
}

// Prune deletes every published outbox row and every inbox record older
// than the retention, Batch rows per statement.
func (p *Pruner) Prune(ctx context.Context) (Pruned, error) {
	before := time.Now().Add(-p.retention)
	q := messagingdb.New(p.pool)
	var n Pruned
	var err error
	n.Outbox, err = p.drain(ctx, "outbox", func() (int64, error) {
		return q.OutboxPrunePublished(ctx, messagingdb.OutboxPrunePublishedParams{Before: before, MaxRows: p.Batch})
	})
	if err != nil {
		return n, err
	}
	n.Inbox, err = p.drain(ctx, "inbox", func() (int64, error) {
		return q.InboxPrune(ctx, messagingdb.InboxPruneParams{Before: before, MaxRows: p.Batch})
	})
	return n, err
}

// drain runs deleteBatch until it deletes less than a batch.
func (p *Pruner) drain(ctx context.Context, table string, deleteBatch func() (int64, error)) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		n, err := deleteBatch()
		total += n
		p.pruned.WithLabelValues(table).Add(float64(n))
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		if n < int64(p.Batch) {
			break
		}
	}
	return total, ctx.Err()
}
