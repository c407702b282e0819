// Package backlog exposes Mail's unfinished deliveries as Prometheus gauges,
// read from PostgreSQL when /metrics is scraped (platform/gauges): how many
// deliveries are queued, sending or retrying, and how long the oldest unsent
// one has waited — what "are mails stuck?" is asked of.
package backlog

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/mail/store"
	"galaxy/platform/gauges"
)

var (
	deliveriesDesc = prometheus.NewDesc("mail_unfinished_deliveries",
		"Deliveries whose outcome is not settled, by status (queued, sending, retrying).",
		[]string{"status"}, nil)
	oldestDesc = prometheus.NewDesc("mail_oldest_waiting_delivery_age_seconds",
		"Age of the oldest queued or retrying delivery; 0 when none waits.",
		nil, nil)
)

// Counter is the store's count of unfinished deliveries (store.Store.InFlight,
// the same bounded query the in-flight endpoint answers from).
type Counter interface {
	InFlight(ctx context.Context) (store.InFlight, error)
}

// Register registers the gauges, and mail_backlog_read_errors_total, with reg.
func Register(reg prometheus.Registerer, counter Counter, logger *slog.Logger) {
	gauges.Register(reg, logger, "mail_backlog_read_errors_total",
		"Scrapes whose count of the unfinished deliveries failed.",
		read(counter, time.Now), deliveriesDesc, oldestDesc)
}

// read counts with counter; now is the clock the age is measured by.
func read(counter Counter, now func() time.Time) gauges.Read {
	return func(ctx context.Context, ch chan<- prometheus.Metric, failed func(string, error)) {
		f, err := counter.InFlight(ctx)
		if err != nil {
			failed("unfinished deliveries", err)
			return
		}
		for status, n := range map[string]int64{store.StatusQueued: f.Queued, store.StatusSending: f.Sending, store.StatusRetrying: f.Retrying} {
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), status)
		}
		age := 0.0
		if !f.OldestWaiting.IsZero() {
			age = max(now().Sub(f.OldestWaiting).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	}
}
