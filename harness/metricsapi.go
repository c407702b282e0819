package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a service's /metrics: every sample by its series
// as the text format spells it, `name{label="value",…}` with the labels
// sorted by name (`name` alone without labels). A histogram gives its
// `_sum`, `_count` and `_bucket{…,le="…"}` series, a summary its `_sum` and
// `_count`.
type Metrics map[string]float64

// Value is the sample of series, 0 when the service has not reported it
// (a counter nothing has incremented yet).
func (m Metrics) Value(series string) float64 { return m[series] }

// Matching returns the samples of metric name whose labels include every
// label of want, by series.
func (m Metrics) Matching(name string, want map[string]string) Metrics {
	out := Metrics{}
	for series, v := range m {
		n, labels := splitSeries(series)
		if n != name {
			continue
		}
		ok := true
		for k, wv := range want {
			if labels[k] != wv {
				ok = false
				break
			}
		}
		if ok {
			out[series] = v
		}
	}
	return out
}

// Label is the value of label in a series of these metrics.
func Label(series, label string) string {
	_, labels := splitSeries(series)
	return labels[label]
}

// ScrapeMetrics GETs baseURL/metrics (no token: /metrics is outside the
// internal API's) and parses it with Prometheus' own text parser.
func ScrapeMetrics(ctx context.Context, baseURL string) (Metrics, error) {
	resp, err := Do(ctx, Request{Method: http.MethodGet, URL: joinURL(baseURL, "/metrics")})
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %d %s", baseURL, resp.Status, resp.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(resp.Body))
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", baseURL, err)
	}
	out := Metrics{}
	for name, f := range families {
		for _, s := range f.GetMetric() {
			labels := s.GetLabel()
			switch {
			case s.Counter != nil:
				out[series(name, labels)] = s.GetCounter().GetValue()
			case s.Gauge != nil:
				out[series(name, labels)] = s.GetGauge().GetValue()
			case s.Untyped != nil:
				out[series(name, labels)] = s.GetUntyped().GetValue()
			case s.Histogram != nil:
				h := s.GetHistogram()
				out[series(name+"_sum", labels)] = h.GetSampleSum()
				out[series(name+"_count", labels)] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					le := strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					out[series(name+"_bucket", labels, "le", le)] = float64(b.GetCumulativeCount())
				}
			case s.Summary != nil:
				out[series(name+"_sum", labels)] = s.GetSummary().GetSampleSum()
				out[series(name+"_count", labels)] = float64(s.GetSummary().GetSampleCount())
			}
		}
	}
	return out, nil
}

// series spells a sample's series: name{label="value",…}, labels sorted.
func series(name string, labels []*dto.LabelPair, extra ...string) string {
	pairs := make([]string, 0, len(labels)+1)
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		pairs = append(pairs, extra[i]+"="+strconv.Quote(extra[i+1]))
	}
	if len(pairs) == 0 {
		return name
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// splitSeries parses what series spelled.
func splitSeries(s string) (string, map[string]string) {
	name, rest, ok := strings.Cut(s, "{")
	labels := map[string]string{}
	if !ok {
		return name, labels
	}
	rest = strings.TrimSuffix(rest, "}")
	for rest != "" {
		k, after, _ := strings.Cut(rest, "=")
		// The value is a quoted Go string: read up to its closing quote.
		v, err := strconv.QuotedPrefix(after)
		if err != nil {
			break
		}
		labels[k], _ = strconv.Unquote(v)
		rest = strings.TrimPrefix(after[len(v):], ",")
	}
	return name, labels
}
