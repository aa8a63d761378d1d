package order

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/events"
)

func TestStateMachine(t *testing.T) {
	t.Parallel()
	allowed := map[[2]string]bool{
		{events.StatusPendingStock, events.StatusPendingPayment}: true,
		{events.StatusPendingStock, events.StatusCancelled}:      true,
		{events.StatusPendingPayment, events.StatusPaid}:         true,
		{events.StatusPendingPayment, events.StatusCancelled}:    true,
		{events.StatusPendingPayment, events.StatusFailed}:       true,
		{events.StatusPaid, events.StatusCancelled}:              true,
	}
	// Every pair of statuses: the six transitions above and nothing else.
	for _, from := range events.OrderStatuses {
		for _, to := range events.OrderStatuses {
			t.Run(from+"→"+to, func(t *testing.T) {
				assert.Equal(t, allowed[[2]string{from, to}], CanTransition(from, to))
			})
		}
	}
}
