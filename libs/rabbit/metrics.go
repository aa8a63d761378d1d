package rabbit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the consumers do. A nil *Metrics records nothing.
type Metrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
	}
	reg.MustRegister(m.handled, m.duration)
	return m
}

func (m *Metrics) observe(queue, typ, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(queue, typ, outcome).Inc()
	m.duration.WithLabelValues(queue, typ).Observe(d.Seconds())
}
