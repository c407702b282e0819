package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the service's own Prometheus series.
type Metrics struct {
	// Intents counts intent entries by outcome: accepted (recorded with
	// routes), skipped (recorded without routes: no recipients), duplicate,
	// rejected, redelivered (recorded before), dead_lettered (too large to
	// record).
	Intents *prometheus.CounterVec
	// Routes counts route transitions: routed, skipped, dead, and retry (a
	// failed attempt scheduled again).
	Routes *prometheus.CounterVec
	// HandOffLatency is the time from an intent entering its stream to the
	// mail command of one of its routes entering the mail stream.
	HandOffLatency prometheus.Histogram
	// Recovered counts mail commands found already in the mail stream when
	// a route was taken over after a cut-short hand-off (not written again).
	Recovered prometheus.Counter
	// BatchSize is the number of intents recorded per database transaction.
	BatchSize prometheus.Histogram
	// Unavailable counts failed hand-off attempts by the dependency found
	// unavailable (redis, user_service): retried without counting toward
	// the route's attempts limit. Each is also one retry (or dead) in Routes.
	Unavailable *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notification_intents_total",
			Help: "Intent entries by outcome: accepted, skipped, duplicate, rejected, redelivered, dead_lettered.",
		}, []string{"outcome"}),
		Routes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notification_routes_total",
			Help: "Route transitions by status: routed, skipped, dead, retry.",
		}, []string{"status"}),
		HandOffLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "notification_handoff_latency_seconds",
			Help:    "Time from an intent entering its stream to its mail command entering the mail stream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		Recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notification_recovered_commands_total",
			Help: "Mail commands found already written when a cut-short hand-off was taken over.",
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "notification_intent_batch_size",
			Help:    "Intents recorded per database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		Unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notification_handoff_unavailable_total",
			Help: "Failed hand-off attempts that found a dependency unavailable (not counted toward the attempts limit), by dependency.",
		}, []string{"dependency"}),
	}
	reg.MustRegister(m.Intents, m.Routes, m.HandOffLatency, m.Recovered, m.BatchSize, m.Unavailable)
	for _, o := range []string{"accepted", "skipped", "duplicate", "rejected", "redelivered", "dead_lettered"} {
		m.Intents.WithLabelValues(o)
	}
	for _, s := range []string{"routed", "skipped", "dead", "retry"} {
		m.Routes.WithLabelValues(s)
	}
	for _, dep := range []string{dependencyRedis, dependencyUserService} {
		m.Unavailable.WithLabelValues(dep)
	}
	return m
}
