package order

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStateMachine(t *testing.T) {
	t.Parallel()
	allowed := map[[2]string]bool{
		{StatusPendingPayment, StatusPaid}:      true,
		{StatusPendingPayment, StatusCancelled}: true,
		{StatusPendingPayment, StatusFailed}:    true,
		{StatusPaid, StatusCancelled}:           true,
	}
	// Every pair of statuses: the four transitions above and nothing else.
	for _, from := range Statuses {
		for _, to := range Statuses {
			t.Run(from+"→"+to, func(t *testing.T) {
				assert.Equal(t, allowed[[2]string{from, to}], CanTransition(from, to))
			})
		}
	}
	assert.False(t, Final(StatusPendingPayment))
	for _, s := range []string{StatusPaid, StatusCancelled, StatusFailed} {
		assert.True(t, Final(s), s)
	}
}
