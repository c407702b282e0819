// Package backlog exposes what the Runtime Manager has under way as
// Prometheus gauges, read when /metrics is scraped (platform/gauges): the
// jobs this process is running, the job results, admin intents and health
// events recorded but not yet on their streams, the games by state, and
// whether the Docker daemon answers — a manager that cannot reach Docker or
// Redis shows here first.
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
	gamesDesc = prometheus.NewDesc("rtmanager_games",
		"Runtime records by state (the ended states until retention deletes them), each count capped at 10000.",
		[]string{"state"}, nil)
	dockerDesc = prometheus.NewDesc("rtmanager_docker_up",
		"1 if the Docker daemon answered a ping during this scrape, else 0.", nil, nil)
)

// Sources are what the gauges read.
type Sources struct {
	// Jobs counts the jobs this process is running (runner.Runner).
	Jobs interface{ Running() int64 }
	// Store counts the recorded entries not yet published (over the
	// outbox's partial index of unpublished rows) and the runtime records
	// by state (store.Store).
	Store interface {
		Unpublished(ctx context.Context) (int64, error)
		GamesByState(ctx context.Context) (map[string]int64, error)
	}
	// Docker pings the daemon (docker.Engine).
	Docker interface {
		Ping(ctx context.Context) error
	}
}

// Register registers the gauges, and rtmanager_backlog_read_errors_total,
// with reg.
func Register(reg prometheus.Registerer, src Sources, logger *slog.Logger) {
	gauges.Register(reg, logger, "rtmanager_backlog_read_errors_total",
		"Scrapes whose count of the unpublished outbox entries or of the games by state failed.",
		func(ctx context.Context, ch chan<- prometheus.Metric, failed func(string, error)) {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(src.Jobs.Running()))
			// A failed ping is the value 0, not a failed read: "Docker is
			// unreachable" is what the gauge is there to say.
			up := 1.0
			if err := src.Docker.Ping(ctx); err != nil {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(dockerDesc, prometheus.GaugeValue, up)
			if n, err := src.Store.Unpublished(ctx); err != nil {
				failed("unpublished outbox entries", err)
			} else {
				ch <- prometheus.MustNewConstMetric(unpublishedDesc, prometheus.GaugeValue, float64(n))
			}
			games, err := src.Store.GamesByState(ctx)
			if err != nil {
				failed("games by state", err)
				return
			}
			for state, n := range games {
				ch <- prometheus.MustNewConstMetric(gamesDesc, prometheus.GaugeValue, float64(n), state)
			}
		}, jobsDesc, unpublishedDesc, gamesDesc, dockerDesc)
}
