package uow

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Step is the effect of delivery i of a batch, inside the transaction tx
// that it may share with the other deliveries of the batch.
type Step func(ctx context.Context, tx *Tx, i int) error

// Prelude runs once in each transaction of a batch, before its steps, with
// the indexes of the deliveries whose steps will run in it (those not
// handled before): it takes, in one global order, the row locks that all
// of those steps will need. Each step locking its own rows in order is not
// enough: two transactions of several deliveries each would still lock in
// opposite orders across deliveries, and deadlock.
type Prelude func(ctx context.Context, tx *Tx, is []int) error

// Batch handles ds, as consumer, in one transaction: one inbox claim for all
// of them, step for each that consumer did not handle before (a redelivery
// or a replay is skipped: its effect committed already), one outbox write,
// one commit. It returns one error per delivery. When any step fails the
// transaction is rolled back and every delivery is handled again in a
// transaction of its own, so one bad message costs its neighbours a retry,
// never their success or a wrong outcome; a panicking step fails its own
// message, like an error.
//
// Deliveries of one order keep their relative order; different orders are
// handled in the order of their correlation ids, so that concurrent batches
// take row and advisory locks in the same order and do not deadlock.
func (r *Runner) Batch(ctx context.Context, consumer string, ds []rabbit.Delivery, step Step) []error {
	return r.BatchWith(ctx, consumer, ds, nil, step)
}

// BatchWith is Batch with prelude (nil: none) run first in each of its
// transactions.
func (r *Runner) BatchWith(ctx context.Context, consumer string, ds []rabbit.Delivery, prelude Prelude, step Step) []error {
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
		err := r.batch(bctx, consumer, ds, prelude, step)
		if err == nil {
			return errs
		}
		r.fallbacks.WithLabelValues(consumer).Inc()
	}
	for i := range ds {
		errs[i] = r.once(ctx, consumer, ds, i, prelude, step)
	}
	return errs
}

// once handles delivery i of ds in a transaction of its own.
func (r *Runner) once(ctx context.Context, consumer string, ds []rabbit.Delivery, i int, prelude Prelude, step Step) error {
	d := ds[i]
	if d.Trace.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, d.Trace)
	}
	return r.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		tx.cause = d.MessageID
		k := keep(d)
		n, err := messagingdb.New(tx).InboxClaim(ctx, messagingdb.InboxClaimParams{
			Consumer:      consumer,
			MessageID:     d.MessageID,
			MessageType:   d.Type,
			CorrelationID: d.CorrelationID,
			Detail:        events.Detail(d.Body),
			Attempt:       k.attempt,
			LastError:     k.lastError,
			Body:          k.body,
		})
		if err != nil {
			return fmt.Errorf("inbox claim %s: %w", d.MessageID, err)
		}
		if n == 0 {
			r.duplicates.WithLabelValues(consumer).Inc()
			return nil
		}
		if prelude != nil {
			if err := prelude(ctx, tx, []int{i}); err != nil {
				return err
			}
		}
		return step(ctx, tx, i)
	})
}

// kept is what the inbox claim records of a delivery besides its identity
// (migration messaging 00005), for the timeline: the attempt that handled
// it and the error of the one before, and the body of a command, which no
// outbox keeps (the gateway publishes commands directly). An event's body
// is in its emitter's outbox, and is not copied.
type kept struct {
	attempt   int16
	lastError string
	body      []byte
}

func keep(d rabbit.Delivery) kept {
	k := kept{attempt: int16(min(max(d.Attempt, 1), math.MaxInt16)), lastError: asText(d.LastError, maxLastError)}
	if events.IsCommand(d.Type) {
		k.body = d.Body
	}
	return k
}

// maxLastError bounds the last error kept, as the consumer bounds the
// header it sets.
const maxLastError = 1024

// asText is s as a text column takes it, at most n bytes: the header may
// come cut in the middle of a character, or from a foreign producer, and a
// byte Postgres refuses would fail the claim, and so the message, forever.
func asText(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// within returns the context of d's step in a batch, and points tx's
// emissions at d's trace: each delivery of a batch is in a trace of its own.
func within(ctx context.Context, tx *Tx, d rabbit.Delivery) context.Context {
	tx.trace = d.Trace
	if !d.Trace.IsValid() {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, d.Trace)
}

func recovering(step Step) Step {
	return func(ctx context.Context, tx *Tx, i int) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
			}
		}()
		return step(ctx, tx, i)
	}
}

func (r *Runner) batch(ctx context.Context, consumer string, ds []rabbit.Delivery, prelude Prelude, step Step) error {
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ds[a].CorrelationID, ds[b].CorrelationID) })
	claim := messagingdb.InboxClaimBatchParams{Consumer: consumer}
	seen := make(map[string]bool, len(ds))
	byID := slices.Clone(order)
	slices.SortFunc(byID, func(a, b int) int { return cmp.Compare(ds[a].MessageID, ds[b].MessageID) })
	for _, i := range byID {
		d := ds[i]
		if seen[d.MessageID] {
			continue
		}
		seen[d.MessageID] = true
		claim.MessageIds = append(claim.MessageIds, d.MessageID)
		claim.MessageTypes = append(claim.MessageTypes, d.Type)
		claim.CorrelationIds = append(claim.CorrelationIds, d.CorrelationID)
		claim.Details = append(claim.Details, events.Detail(d.Body))
		k := keep(d)
		claim.Attempts = append(claim.Attempts, k.attempt)
		claim.LastErrors = append(claim.LastErrors, k.lastError)
		claim.Bodies = append(claim.Bodies, k.body)
	}
	return r.InTx(ctx, func(ctx context.Context, tx *Tx) error {
		claimed, err := messagingdb.New(tx).InboxClaimBatch(ctx, claim)
		if err != nil {
			return fmt.Errorf("inbox claim of %d messages: %w", len(claim.MessageIds), err)
		}
		isNew := make(map[string]bool, len(claimed))
		for _, id := range claimed {
			isNew[id] = true
		}
		duplicates := 0
		todo := make([]int, 0, len(order))
		for _, i := range order {
			id := ds[i].MessageID
			if !isNew[id] {
				duplicates++
				continue
			}
			// A message delivered twice in one batch takes effect once.
			delete(isNew, id)
			todo = append(todo, i)
		}
		if prelude != nil && len(todo) > 0 {
			if err := prelude(ctx, tx, todo); err != nil {
				return err
			}
		}
		for _, i := range todo {
			tx.cause = ds[i].MessageID
			if err := step(within(ctx, tx, ds[i]), tx, i); err != nil {
				return err
			}
		}
		if duplicates > 0 {
			tx.AfterCommit(func() { r.duplicates.WithLabelValues(consumer).Add(float64(duplicates)) })
		}
		return nil
	})
}
