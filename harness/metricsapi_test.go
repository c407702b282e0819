package harness

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A scrape of a real registry's /metrics: series spelled as the text format
// spells them, labels sorted, histograms as their _sum and _count.
func TestScrapeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "h"}, []string{"outcome", "kind"})
	c.WithLabelValues("failed", "start").Add(3)
	c.WithLabelValues("succeeded", "start").Inc()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "job_seconds", Help: "h", Buckets: []float64{1}})
	h.Observe(0.5)
	h.Observe(2)
	reg.MustRegister(c, h)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	m, err := ScrapeMetrics(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`jobs_total{kind="start",outcome="failed"}`: 3,
		`job_seconds_sum`:                          2.5,
		`job_seconds_count`:                        2,
		`job_seconds_bucket{le="1"}`:               1,
		`jobs_total{kind="stop",outcome="failed"}`: 0,
	} {
		if got := m.Value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	failed := m.Matching("jobs_total", map[string]string{"outcome": "failed"})
	if len(failed) != 1 || Label(`jobs_total{kind="start",outcome="failed"}`, "kind") != "start" {
		t.Errorf("failed jobs = %v", failed)
	}
}
