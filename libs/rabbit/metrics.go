package rabbit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the consumers do. A nil *Metrics records nothing.
type Metrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	batch    *prometheus.HistogramVec
	paused   *prometheus.GaugeVec
}

// NewMetrics registers the consumer metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_messages_consumed_total",
			Help: "Messages consumed, by queue, type and outcome (ok, retried, dead_lettered, paused).",
		}, []string{"queue", "type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersaga_message_handler_duration_seconds",
			Help:    "Time to handle and settle one message, by queue and type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"queue", "type"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordersaga_consumer_batch_messages",
			Help:    "Deliveries handled together (in one transaction), by queue.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}, []string{"queue"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ordersaga_consumer_paused_batches",
			Help: "Batches waiting for their consumer's own dependency (its database) to come back, by queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.handled, m.duration, m.batch, m.paused)
	return m
}

func (m *Metrics) observe(queue, typ, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(queue, typ, outcome).Inc()
	m.duration.WithLabelValues(queue, typ).Observe(d.Seconds())
}

func (m *Metrics) observeBatch(queue string, n int) {
	if m == nil {
		return
	}
	m.batch.WithLabelValues(queue).Observe(float64(n))
}

// pausing adds delta to the batches of queue waiting for a dependency.
func (m *Metrics) pausing(queue string, delta float64) {
	if m == nil {
		return
	}
	m.paused.WithLabelValues(queue).Add(delta)
}
