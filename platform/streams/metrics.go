package streams

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts entry outcomes per stream.
type Metrics struct {
	entries *prometheus.CounterVec
}

// NewMetrics registers the stream metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{entries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stream_entries_total",
		Help: "Stream entry deliveries by outcome: handled, retried, dead_lettered, unavailable (one per in-place retry while a dependency is down), and taken_over (an entry of a batch another consumer claimed before this one reached it; skipped here).",
	}, []string{"stream", "outcome"})}
	reg.MustRegister(m.entries)
	return m
}

func (m *Metrics) observe(stream, outcome string) {
	if m == nil {
		return
	}
	m.entries.WithLabelValues(stream, outcome).Inc()
}
