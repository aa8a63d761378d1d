package inventory

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

// TestEarlyCancellationsArePruned: the cancellations remembered before
// their order.placed are forgotten once older than the retention, the
// recent ones kept (they still stop their order's reservation).
func TestEarlyCancellationsArePruned(t *testing.T) {
	t.Parallel()
	h := newService(t)
	ctx := context.Background()
	h.product(t, "A", 250, 5)
	cancel := func() uuid.UUID {
		id := uuid.New()
		require.NoError(t, handle(t, h, h.orderCancelled, &events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested,
			PreviousStatus: events.StatusPendingStock, UserID: uuid.New()}))
		return id
	}
	old := make([]uuid.UUID, pruneBatch+5) // more than one statement's worth
	for i := range old {
		old[i] = cancel()
	}
	_, err := h.pool.Exec(ctx, "UPDATE early_cancellations SET at = now() - interval '8 days'")
	require.NoError(t, err)
	recent := cancel()

	n, err := h.PruneEarlyCancellations(ctx, time.Now().Add(-7*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(len(old)), n)
	var left []uuid.UUID
	require.NoError(t, h.pool.QueryRow(ctx, "SELECT array_agg(order_id) FROM early_cancellations").Scan(&left))
	assert.Equal(t, []uuid.UUID{recent}, left, "the recent cancellation is kept")

	_, err = h.place(t, line("A", 1)) // another order: reserved
	require.NoError(t, err)
	require.NoError(t, handle(t, h, h.orderPlaced, &events.OrderItemsPlaced{OrderID: recent, UserID: uuid.New(),
		Items: []events.Line{line("A", 1)}, Currency: "USD", PaymentMethod: "tok_visa"}))
	assert.Equal(t, int64(1), h.stock(t, "A").Reserved, "the order cancelled recently is still never reserved")

	n, err = h.PruneEarlyCancellations(ctx, time.Now().Add(-7*24*time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "nothing more to forget")
}
