package monitoring

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// TestAlertExpressionsSelectWhatTheyShould evaluates the alerts whose PromQL
// is more than a comparison — as alerts.yaml has them — with Prometheus'
// engine over series written in its test notation (one sample a minute from
// 0; `2x40` is 2 forty-one times): what must fire, and what looks alike and
// must not. The `for:` durations are the rule manager's, not replayed here.
func TestAlertExpressionsSelectWhatTheyShould(t *testing.T) {
	groups, errs := Rules()
	if len(errs) > 0 {
		t.Fatalf("%v", errs)
	}
	exprs := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute})
	for _, tc := range []struct {
		alert  string
		series []string
		// want maps an evaluation time (minutes) to the result, each
		// series's labels as PromQL spells them to its value; empty: the
		// alert does not fire.
		want map[int]map[string]float64
	}{
		{
			// A rise fires once per stream, whatever the replicas; a trim
			// alone does not; a rise after a trim does. Quiet again 15 min
			// after the last rise.
			alert: "GalaxyDeadLettersGrowing",
			series: []string{
				`stream_dead_letter_entries{job="rtmanager",instance="a",stream="runtime:start_jobs"} 0x2 2x40`,
				`stream_dead_letter_entries{job="rtmanager",instance="b",stream="runtime:start_jobs"} 0x2 2x40`,
				`stream_dead_letter_entries{job="notification",instance="a",stream="notification:intents"} 5x4 1x40`,
				`stream_dead_letter_entries{job="mail",instance="a",stream="mail:delivery_commands"} 9x4 1x2 3x40`,
			},
			want: map[int]map[string]float64{
				10: {`{stream="runtime:start_jobs"}`: 2, `{stream="mail:delivery_commands"}`: 3},
				30: {},
			},
		},
		{
			alert:  "GalaxyNotificationRoutesDead",
			series: []string{`notification_dead_routes{job="notification",instance="a"} 0x9 1x60`},
			want:   map[int]map[string]float64{5: {}, 20: {`{job="notification"}`: 1}, 45: {}},
		},
		{
			// 2 failed of 12 finished a minute fires; none failed, and
			// nothing finished (0/0), do not.
			alert: "GalaxyMailDeliveriesFailing",
			series: []string{
				`mail_deliveries_finished_total{job="mail",instance="a",status="sent"} 0+10x30`,
				`mail_deliveries_finished_total{job="mail",instance="a",status="failed"} 0+2x30`,
				`mail_deliveries_finished_total{job="mail-healthy",instance="a",status="sent"} 0+10x30`,
				`mail_deliveries_finished_total{job="mail-healthy",instance="a",status="failed"} 0x30`,
				`mail_deliveries_finished_total{job="mail-idle",instance="a",status="sent"} 0x30`,
				`mail_deliveries_finished_total{job="mail-idle",instance="a",status="failed"} 0x30`,
			},
			want: map[int]map[string]float64{20: {`{job="mail"}`: 2.0 / 12}},
		},
		{
			// Under load the outbox is seldom empty at a scrape, but it
			// empties.
			alert: "GalaxyRuntimeOutboxStuck",
			series: []string{
				`rtmanager_outbox_unpublished_entries{job="rtmanager",instance="busy"} ` + strings.Repeat("3 0 ", 15),
				`rtmanager_outbox_unpublished_entries{job="rtmanager",instance="stuck"} 4x30`,
			},
			want: map[int]map[string]float64{20: {`{instance="stuck", job="rtmanager"}`: 4}},
		},
		{
			// One family of read errors growing is enough; an instance
			// whose counters stand still is not named.
			alert: "GalaxyBacklogUnreadable",
			series: []string{
				`stream_backlog_read_errors_total{job="mail",instance="a"} 0x30`,
				`mail_backlog_read_errors_total{job="mail",instance="a"} 0+1x30`,
				`stream_backlog_read_errors_total{job="rtmanager",instance="b"} 0x30`,
				`rtmanager_backlog_read_errors_total{job="rtmanager",instance="b"} 0x30`,
			},
			want: map[int]map[string]float64{20: {`{instance="a", job="mail"}`: 10}},
		},
		{
			// A loop failing while Docker answers fires, by loop; the same
			// failures with Docker unreachable are GalaxyDockerUnreachable's,
			// and a loop whose errors stopped growing is quiet.
			alert: "GalaxyRuntimeLoopFailing",
			series: []string{
				`rtmanager_loop_errors_total{job="rtmanager",instance="a",loop="inspect"} 0+1x30`,
				`rtmanager_loop_errors_total{job="rtmanager",instance="a",loop="probe"} 0x30`,
				`rtmanager_docker_up{job="rtmanager",instance="a"} 1x30`,
				`rtmanager_loop_errors_total{job="rtmanager",instance="b",loop="inspect"} 0+1x30`,
				`rtmanager_docker_up{job="rtmanager",instance="b"} 0x30`,
				`rtmanager_loop_errors_total{job="rtmanager",instance="c",loop="cleanup"} 0+1x5 5x25`,
				`rtmanager_docker_up{job="rtmanager",instance="c"} 1x30`,
			},
			want: map[int]map[string]float64{20: {`{instance="a", job="rtmanager", loop="inspect"}`: 10}},
		},
		{
			alert:  "GalaxyDockerReachabilityUnknown",
			series: []string{`rtmanager_jobs_running{job="rtmanager",instance="a"} 0x30`},
			want:   map[int]map[string]float64{10: {`{}`: 1}},
		},
	} {
		t.Run(tc.alert, func(t *testing.T) {
			expr, ok := exprs[tc.alert]
			if !ok {
				t.Fatalf("%s: no alert %s", AlertsFile, tc.alert)
			}
			db := loadSeries(t, tc.series)
			for _, minute := range slices.Sorted(maps.Keys(tc.want)) {
				at := time.Unix(0, 0).Add(time.Duration(minute) * time.Minute)
				q, err := engine.NewInstantQuery(t.Context(), db, nil, expr, at)
				if err != nil {
					t.Fatal(err)
				}
				res := q.Exec(t.Context())
				if res.Err != nil {
					t.Fatalf("at %dm: %v", minute, res.Err)
				}
				vec, err := res.Vector()
				if err != nil {
					t.Fatalf("at %dm: %v", minute, err)
				}
				got := map[string]float64{}
				for _, s := range vec {
					got[s.Metric.String()] = s.F
				}
				if !maps.EqualFunc(got, tc.want[minute], func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }) {
					t.Errorf("at %dm: %s\n= %v, want %v", minute, expr, got, tc.want[minute])
				}
				q.Close()
			}
		})
	}
}

// loadSeries holds series in promqltest's notation, one sample a minute
// from the Unix epoch, as a Queryable for the engine.
func loadSeries(t *testing.T, descs []string) storage.Queryable {
	t.Helper()
	var all []storage.Series
	for _, d := range descs {
		lset, values, err := promQL.ParseSeriesDesc(d)
		if err != nil {
			t.Fatalf("series %q: %v", d, err)
		}
		var samples []chunks.Sample
		for i, v := range values {
			if !v.Omitted {
				samples = append(samples, floatSample{t: int64(i) * time.Minute.Milliseconds(), f: v.Value})
			}
		}
		all = append(all, storage.NewListSeries(lset, samples))
	}
	return &storage.MockQueryable{MockQuerier: &storage.MockQuerier{
		SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			set := &seriesSet{i: -1}
			for _, s := range all {
				if matchesAll(s.Labels(), ms) {
					set.series = append(set.series, s)
				}
			}
			slices.SortFunc(set.series, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
			return set
		},
	}}
}

// seriesSet iterates over series, sorted by labels as the engine expects.
type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

func matchesAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// floatSample is a float sample of a test series.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }
