// Package backlog exposes Notification's waiting routes as Prometheus
// gauges, read from PostgreSQL when /metrics is scraped (platform/gauges):
// how many routes wait for their first hand-off or for a retry, how long
// the oldest pending notification has waited, and how many routes are dead —
// where "admins did not get the alert" shows first.
package backlog

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/notification/store"
	"galaxy/platform/gauges"
)

var (
	routesDesc = prometheus.NewDesc("notification_waiting_routes",
		"Routes whose hand-off to Mail is not done, by what they wait for: first_attempt or retry (after a failed hand-off).",
		[]string{"wait"}, nil)
	oldestDesc = prometheus.NewDesc("notification_oldest_waiting_age_seconds",
		"Age of the oldest notification with a route still waiting; 0 when none waits.",
		nil, nil)
	deadDesc = prometheus.NewDesc("notification_dead_routes",
		"Routes whose hand-off failed its last attempt and that no operator has retried yet (until retention deletes them), capped at 10000.",
		nil, nil)
)

// Counter is the store's count of waiting routes (store.Store.InFlight, the
// bounded query the in-flight endpoint answers from) and of dead routes
// (over their partial index, capped).
type Counter interface {
	InFlight(ctx context.Context) (store.InFlight, error)
	DeadRouteCount(ctx context.Context) (int64, error)
}

// Register registers the gauges, and notification_backlog_read_errors_total,
// with reg.
func Register(reg prometheus.Registerer, counter Counter, logger *slog.Logger) {
	gauges.Register(reg, logger, "notification_backlog_read_errors_total",
		"Scrapes whose count of the waiting or the dead routes failed.",
		read(counter, time.Now), routesDesc, oldestDesc, deadDesc)
}

// read counts with counter; now is the clock the age is measured by.
func read(counter Counter, now func() time.Time) gauges.Read {
	return func(ctx context.Context, ch chan<- prometheus.Metric, failed func(string, error)) {
		if n, err := counter.DeadRouteCount(ctx); err != nil {
			failed("dead routes", err)
		} else {
			ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(n))
		}
		f, err := counter.InFlight(ctx)
		if err != nil {
			failed("waiting routes", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(routesDesc, prometheus.GaugeValue, float64(f.FirstAttempt), "first_attempt")
		ch <- prometheus.MustNewConstMetric(routesDesc, prometheus.GaugeValue, float64(f.Retry), "retry")
		age := 0.0
		if f.OldestWaitingMS > 0 {
			age = max(now().Sub(time.UnixMilli(f.OldestWaitingMS)).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	}
}
