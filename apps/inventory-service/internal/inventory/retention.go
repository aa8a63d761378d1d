package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/ordersaga/ordersaga/db/inventory/inventorydb"
)

// pruneBatch bounds the early cancellations one statement forgets.
const pruneBatch = 1000

// PruneEarlyCancellations forgets the cancellations remembered before
// before (an order cancelled while waiting for its stock), a batch per
// statement, and returns how many it forgot. Such a row only stops a late
// copy of the order's order.placed, and a copy older than the retention of
// the messages (MESSAGE_RETENTION) would not be deduplicated by the inbox
// either: past it, both are forgotten alike (docs/contract.md, Extensions).
func (s *Service) PruneEarlyCancellations(ctx context.Context, before time.Time) (int64, error) {
	q := inventorydb.New(s.pool)
	var total int64
	for {
		n, err := q.PruneEarlyCancellations(ctx, inventorydb.PruneEarlyCancellationsParams{Before: before, MaxRows: pruneBatch})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune early cancellations: %w", err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

// RunCancellationPruning forgets, until ctx ends, the early cancellations
// older than retention, looking as often as the messages' pruner does (a
// tenth of the retention, between a second and a minute).
func (s *Service) RunCancellationPruning(ctx context.Context, retention time.Duration) error {
	t := time.NewTicker(min(max(retention/10, time.Second), time.Minute))
	defer t.Stop()
	for {
		if n, err := s.PruneEarlyCancellations(ctx, time.Now().Add(-retention)); err != nil && ctx.Err() == nil {
			return err
		} else if n > 0 {
			s.log.Debug("forgot early cancellations older than the retention", "rows", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
