// Package inbox makes message handling idempotent: a handler's effect and
// the record that its message was handled commit in one transaction, so a
// redelivered or replayed message is acknowledged without a second effect.
package inbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Inbox records handled messages in a service's database.
type Inbox struct {
	pool       *pgxpool.Pool
	duplicates *prometheus.CounterVec
}

// New returns the inbox of pool's database.
func New(pool *pgxpool.Pool, reg prometheus.Registerer) *Inbox {
	in := &Inbox{pool: pool, duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ordersaga_inbox_duplicates_total",
		Help: "Messages skipped because their consumer had handled them already.",
	}, []string{"consumer"})}
	reg.MustRegister(in.duplicates)
	return in
}

// Once runs fn in a transaction that also records d as handled by consumer.
// If consumer handled d before, fn does not run and Once returns nil.
func (in *Inbox) Once(ctx context.Context, consumer string, d rabbit.Delivery, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		n, err := messagingdb.New(tx).InboxClaim(ctx, messagingdb.InboxClaimParams{
			Consumer:      consumer,
			MessageID:     d.MessageID,
			MessageType:   d.Type,
			CorrelationID: d.CorrelationID,
			Detail:        events.Detail(d.Body),
		})
		if err != nil {
			return fmt.Errorf("inbox claim %s: %w", d.MessageID, err)
		}
		if n == 0 {
			in.duplicates.WithLabelValues(consumer).Inc()
			return nil
		}
		return fn(tx)
	})
}
