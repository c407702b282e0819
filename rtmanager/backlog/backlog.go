// Package backlog exposes what the Runtime Manager has under way as
// Prometheus gauges, read when /metrics is scraped (platform/gauges): the
// jobs this process is running and the job results, admin intents and health
// events recorded but not yet on their streams — a manager that cannot reach
// Docker or Redis shows here first.
package backlog

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/platform/gauges"
)

var (
	jobsDesc = prometheus.NewDesc("rtmanager_jobs_running",
		"Start and stop jobs this process is executing.", nil, nil)
	unpublishedDesc = prometheus.NewDesc("rtmanager_outbox_unpublished_entries",
		"Job results, admin intents and health events recorded and not yet added to their streams.", nil, nil)
)

// Jobs counts the jobs a process is running (runner.Runner).
type Jobs interface {
	Running() int64
}

// Outbox counts the recorded entries not yet published (store.Store, a
// count over the outbox's partial index of unpublished rows).
type Outbox interface {
	Unpublished(ctx context.Context) (int64, error)
}

// Register registers the gauges, and rtmanager_backlog_read_errors_total,
// with reg.
func Register(reg prometheus.Registerer, jobs Jobs, outbox Outbox, logger *slog.Logger) {
	gauges.Register(reg, logger, "rtmanager_backlog_read_errors_total",
		"Scrapes whose count of the unpublished outbox entries failed.",
		func(ctx context.Context, ch chan<- prometheus.Metric, failed func(string, error)) {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(jobs.Running()))
			n, err := outbox.Unpublished(ctx)
			if err != nil {
				failed("unpublished outbox entries", err)
				return
			}
			ch <- prometheus.MustNewConstMetric(unpublishedDesc, prometheus.GaugeValue, float64(n))
		}, jobsDesc, unpublishedDesc)
}
