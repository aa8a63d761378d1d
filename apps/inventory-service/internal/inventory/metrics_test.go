package inventory

import (
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

// TestMetricsCountWhatCommitted: the dashboard's stock panels read these.
func TestMetricsCountWhatCommitted(t *testing.T) {
	t.Parallel()
	h := newService(t)
	require.NoError(t, h.Instrument(prometheus.NewRegistry()))
	h.product(t, "A", 100, 5)
	paid, err := h.place(t, line("A", 3))
	require.NoError(t, err)
	_, err = h.place(t, line("A", 3)) // 2 left: rejected
	require.NoError(t, err)
	require.NoError(t, handle(t, h, h.orderPaid, &events.OrderPaid{OrderOutcome: events.OrderOutcome{OrderID: paid, PaymentID: uuid.New()}}))
	require.NoError(t, handle(t, h, h.adjustStock, &events.StockAdjustRequested{AdjustmentID: uuid.New(), SKU: "A", Delta: -9}))

	m := h.metrics
	assert.Equal(t, 1.0, testutil.ToFloat64(m.reservations.WithLabelValues("RESERVED")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.reservations.WithLabelValues(events.ReasonOutOfStock)))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.units.WithLabelValues("reserved")))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.units.WithLabelValues("committed")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.adjustments.WithLabelValues(Refused)))
}
