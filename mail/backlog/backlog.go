// Package backlog exposes Mail's unfinished deliveries as Prometheus gauges,
// read from PostgreSQL when /metrics is scraped: how many deliveries are
// queued, sending or retrying, and how long the oldest unsent one has
// waited — what "are mails stuck?" is asked of.
package backlog

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/mail/store"
)

// readTimeout bounds the scrape's query, so a PostgreSQL that hangs cannot
// hang /metrics.
const readTimeout = time.Second

var (
	deliveriesDesc = prometheus.NewDesc("mail_unfinished_deliveries",
		"Deliveries whose outcome is not settled, by status (queued, sending, retrying).",
		[]string{"status"}, nil)
	oldestDesc = prometheus.NewDesc("mail_oldest_waiting_delivery_age_seconds",
		"Age of the oldest queued or retrying delivery; 0 when none waits.",
		nil, nil)
	readErrorsDesc = prometheus.NewDesc("mail_backlog_read_errors_total",
		"Scrapes whose count of the unfinished deliveries failed.",
		nil, nil)
)

// Counter is the store's count of unfinished deliveries (store.Store.InFlight,
// the same bounded query the in-flight endpoint answers from).
type Counter interface {
	InFlight(ctx context.Context) (store.InFlight, error)
}

type collector struct {
	counter    Counter
	logger     *slog.Logger
	now        func() time.Time
	readErrors atomic.Uint64
}

// Register registers the gauges with reg. A failed read leaves them out of
// that scrape, is counted and logged; the rest of /metrics is served.
func Register(reg prometheus.Registerer, counter Counter, logger *slog.Logger) {
	reg.MustRegister(&collector{counter: counter, logger: logger, now: time.Now})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deliveriesDesc
	ch <- oldestDesc
	ch <- readErrorsDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	f, err := c.counter.InFlight(ctx)
	if err != nil {
		c.readErrors.Add(1)
		c.logger.Warn("metrics: counting the unfinished deliveries failed", "err", err)
	} else {
		for status, n := range map[string]int64{store.StatusQueued: f.Queued, store.StatusSending: f.Sending, store.StatusRetrying: f.Retrying} {
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), status)
		}
		age := 0.0
		if !f.OldestWaiting.IsZero() {
			age = max(c.now().Sub(f.OldestWaiting).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	}
	ch <- prometheus.MustNewConstMetric(readErrorsDesc, prometheus.CounterValue, float64(c.readErrors.Load()))
}
