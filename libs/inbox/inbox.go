// Package inbox makes message handling idempotent: a handler's effect and
// the record that its message was handled commit in one transaction, so a
// redelivered or replayed message is acknowledged without a second effect.
package inbox

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Inbox records handled messages in a service's database.
type Inbox struct {
	pool       *pgxpool.Pool
	duplicates *prometheus.CounterVec
	// Committed, when set, receives the outbox messages that Batch's
	// handlers wrote, once their transaction committed (Relay.Dispatch).
	Committed func([]events.Message)
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

// Step is one message's effect inside a transaction that Batch shares
// between several messages. after, when not nil, runs once that transaction
// committed (metrics, wake-ups: nothing that can fail).
type Step func(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (after func(), err error)

// Batch handles ds, as consumer, in one transaction: one claim for all of
// them, step for each that is new, one commit. It returns one error per
// delivery. When any step fails the transaction is rolled back and every
// delivery is handled again in a transaction of its own, so one bad message
// costs its neighbours a retry, never their success or a wrong outcome.
//
// Deliveries of one order keep their relative order; different orders are
// handled in the order of their correlation ids, so that concurrent batches
// take row and advisory locks in the same order and do not deadlock.
func (in *Inbox) Batch(ctx context.Context, consumer string, ds []rabbit.Delivery, step Step) []error {
	// A panicking handler fails its own message, like an error: its
	// neighbours are then handled alone and succeed.
	step = recovering(step)
	errs := make([]error, len(ds))
	if len(ds) > 1 {
		// The shared attempt gets half of the time left, so that a batch
		// that runs out of it leaves its messages time for their own.
		bctx := ctx
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			bctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
			defer cancel()
		}
		if err := in.batch(bctx, consumer, ds, step); err == nil {
			return errs
		}
	}
	for i, d := range ds {
		var after func()
		var deferred *outbox.Deferred
		errs[i] = in.Once(ctx, consumer, d, func(tx pgx.Tx) error {
			deferred = outbox.Defer(tx)
			var err error
			if after, err = step(ctx, deferred, d); err != nil {
				return err
			}
			return deferred.Flush(ctx)
		})
		if errs[i] != nil {
			continue
		}
		if deferred != nil {
			in.committed(deferred.Written())
		}
		if after != nil {
			after()
		}
	}
	return errs
}

func (in *Inbox) committed(msgs []events.Message) {
	if in.Committed != nil && len(msgs) > 0 {
		in.Committed(msgs)
	}
}

func recovering(step Step) Step {
	return func(ctx context.Context, tx pgx.Tx, d rabbit.Delivery) (after func(), err error) {
		defer func() {
			if r := recover(); r != nil {
				after, err = nil, fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
			}
		}()
		return step(ctx, tx, d)
	}
}

func (in *Inbox) batch(ctx context.Context, consumer string, ds []rabbit.Delivery, step Step) error {
	sorted := slices.Clone(ds)
	slices.SortStableFunc(sorted, func(a, b rabbit.Delivery) int { return cmp.Compare(a.CorrelationID, b.CorrelationID) })
	claim := messagingdb.InboxClaimBatchParams{Consumer: consumer}
	seen := make(map[string]bool, len(ds))
	byID := slices.Clone(sorted)
	slices.SortFunc(byID, func(a, b rabbit.Delivery) int { return cmp.Compare(a.MessageID, b.MessageID) })
	for _, d := range byID {
		if seen[d.MessageID] {
			continue
		}
		seen[d.MessageID] = true
		claim.MessageIds = append(claim.MessageIds, d.MessageID)
		claim.MessageTypes = append(claim.MessageTypes, d.Type)
		claim.CorrelationIds = append(claim.CorrelationIds, d.CorrelationID)
		claim.Details = append(claim.Details, events.Detail(d.Body))
	}
	var afters []func()
	var deferred *outbox.Deferred
	duplicates := 0
	err := pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		afters, duplicates = afters[:0], 0
		// The batch's outbox messages are written in one statement, last.
		deferred = outbox.Defer(tx)
		claimed, err := messagingdb.New(tx).InboxClaimBatch(ctx, claim)
		if err != nil {
			return fmt.Errorf("inbox claim of %d messages: %w", len(claim.MessageIds), err)
		}
		isNew := make(map[string]bool, len(claimed))
		for _, id := range claimed {
			isNew[id] = true
		}
		for _, d := range sorted {
			if !isNew[d.MessageID] {
				duplicates++
				continue
			}
			// A message delivered twice in one batch takes effect once.
			delete(isNew, d.MessageID)
			after, err := step(ctx, deferred, d)
			if err != nil {
				return err
			}
			if after != nil {
				afters = append(afters, after)
			}
		}
		return deferred.Flush(ctx)
	})
	if err != nil {
		return err
	}
	if duplicates > 0 {
		in.duplicates.WithLabelValues(consumer).Add(float64(duplicates))
	}
	in.committed(deferred.Written())
	for _, after := range afters {
		after()
	}
	return nil
}
