// Package gauges registers Prometheus collectors whose values are read from
// a service's stores when /metrics is scraped — backlogs an alert asks
// about, which no event counts. Each read is bounded by a timeout, and a
// read that fails leaves its gauges out of that scrape, is logged and
// counted, while the rest of /metrics is served.
package gauges

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReadTimeout bounds one scrape's reads, so a store that hangs cannot hang
// /metrics.
const ReadTimeout = time.Second

// Read sends the gauges' current values to ch, reading them within ctx,
// and reports each read that failed to failed (what says which).
type Read func(ctx context.Context, ch chan<- prometheus.Metric, failed func(what string, err error))

// Register registers with reg a collector of descs whose values read sends
// at each scrape, and the counter errorsName of its failed reads.
func Register(reg prometheus.Registerer, logger *slog.Logger, errorsName, errorsHelp string, read Read, descs ...*prometheus.Desc) {
	reg.MustRegister(&collector{
		read: read, descs: descs, logger: logger,
		errorsDesc: prometheus.NewDesc(errorsName, errorsHelp, nil, nil),
	})
}

type collector struct {
	read       Read
	descs      []*prometheus.Desc
	errorsDesc *prometheus.Desc
	logger     *slog.Logger
	// errors is sent by Collect itself, after its reads, so a scrape
	// counts its own failures.
	errors atomic.Uint64
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.errorsDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ReadTimeout)
	defer cancel()
	c.read(ctx, ch, func(what string, err error) {
		c.errors.Add(1)
		c.logger.Warn("metrics: a scrape-time read failed", "read", what, "err", err)
	})
	ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(c.errors.Load()))
}

// Values gathers g and returns each counter and gauge series as
// name{label="value",...} (labels sorted) → value: what a test or a tool
// compares against, without parsing the text format.
func Values(g prometheus.Gatherer) (map[string]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			slices.Sort(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out, nil
}
