package monitoring

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"galaxy/harness"
)

func TestSelectorsNameMetricsAndTheLabelsUsed(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []Selector
	}{
		{`up == 0`, []Selector{{Metric: "up"}}},
		{`absent(rtmanager_docker_up)`, []Selector{{Metric: "rtmanager_docker_up"}}},
		{
			`max by (job, stream, group) (stream_group_lag_entries) > 100`,
			[]Selector{{Metric: "stream_group_lag_entries", Labels: []string{"group", "job", "stream"}}},
		},
		{
			// A matrix selector's vector, a matcher's label, and __name__
			// spelt as a matcher.
			`sum(increase({__name__="mail_deliveries_finished_total",status="failed"}[15m])) / sum(increase(mail_deliveries_finished_total[15m]))`,
			[]Selector{
				{Metric: "mail_deliveries_finished_total", Labels: []string{"status"}},
				{Metric: "mail_deliveries_finished_total"},
			},
		},
		{
			// A histogram is selected by its series, _bucket with le.
			`histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{code=~"5.."}[5m])))`,
			[]Selector{{Metric: "http_request_duration_seconds_bucket", Labels: []string{"code", "le", "route"}}},
		},
		{
			// Only the aggregation around a selector lends it labels, and
			// `without` asks for none.
			`sum by (stream) (a) or sum without (instance) (b{x="1"}) or count(c) or vector(0)`,
			[]Selector{{Metric: "a", Labels: []string{"stream"}}, {Metric: "b", Labels: []string{"x"}}, {Metric: "c"}},
		},
		{
			`sum(max by (stream) (stream_dead_letter_entries offset 5m))`,
			[]Selector{{Metric: "stream_dead_letter_entries", Labels: []string{"stream"}}},
		},
	} {
		got, err := Selectors(tc.expr)
		if err != nil {
			t.Errorf("Selectors(%q): %v", tc.expr, err)
			continue
		}
		if !slices.EqualFunc(got, tc.want, func(a, b Selector) bool {
			return a.Metric == b.Metric && slices.Equal(a.Labels, b.Labels)
		}) {
			t.Errorf("Selectors(%q) = %+v, want %+v", tc.expr, got, tc.want)
		}
	}
}

func TestSelectorsRefuseWhatCannotBeChecked(t *testing.T) {
	for expr, want := range map[string]string{
		`rate(foo[5m]`:                `unclosed left parenthesis`,
		`{__name__=~"mail_.*"}`:       `selectors without a metric name: {__name__=~"mail_.*"}`,
		`sum(rate({job="mail"}[5m]))`: `selectors without a metric name: {job="mail"}`,
		`no_such_function(up)`:        `unknown function with name "no_such_function"`,
	} {
		_, err := Selectors(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Selectors(%q) error = %v, want one containing %q", expr, err, want)
		}
	}
}

func TestExpandGrafanaGivesWhatPrometheusIsSent(t *testing.T) {
	for in, want := range map[string]string{
		`rate(x{job=~"$job",instance=~"${instance}"}[$__rate_interval])`: `rate(x{job=~".+",instance=~".+"}[5m])`,
		`increase(x[$__range]) / $__interval`:                            `increase(x[5m]) / 5m`,
		`x{job=~"${job:regex}"}`:                                         `x{job=~".+"}`,
		`sum(x)`:                                                         `sum(x)`,
	} {
		if got := ExpandGrafana(in); got != want {
			t.Errorf("ExpandGrafana(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLabelValuesSplitsSelectorAndLabel(t *testing.T) {
	sel, label, err := LabelValues(`label_values(http_requests_total{job=~"$job"}, instance)`)
	if err != nil || sel != `http_requests_total{job=~"$job"}` || label != "instance" {
		t.Errorf(`LabelValues = %q, %q, %v; want http_requests_total{job=~"$job"}, instance`, sel, label, err)
	}
	for _, bad := range []string{`label_values(job)`, `query_result(up)`, ``} {
		if _, _, err := LabelValues(bad); err == nil || !strings.Contains(err.Error(), "is not label_values(<metric selector>, <label>)") {
			t.Errorf("LabelValues(%q) error = %v", bad, err)
		}
	}
}

func TestHeadingAnchorsAreGitHubs(t *testing.T) {
	doc := "# Operations\n\n## Alerts\n\n### GalaxyTargetDown\n\ntext\n\n```\n# not a heading\n```\n\n## Loading the rules, and the dashboard\n"
	got := headingAnchors(doc)
	want := []string{"alerts", "galaxytargetdown", "loading-the-rules-and-the-dashboard", "operations"}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
		t.Errorf("headingAnchors = %v, want %v", keys, want)
	}
}

func TestCheckQueriesNamesWhatTheScrapesLack(t *testing.T) {
	live, err := indexMetrics(map[string]harness.Metrics{
		"mail": {
			`mail_delivery_attempts_total{outcome="sent"}`:                              1,
			`http_request_duration_seconds_bucket{code="200",le="+Inf",route="GET /x"}`: 3,
		},
		"rtmanager": {`rtmanager_docker_up`: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := checkQueries([]Query{
		{Where: "ok", Expr: `sum by (job, le) (rate(http_request_duration_seconds_bucket{route="GET /x"}[5m])) or up == 0 or ALERTS`},
		{Where: "missing", Expr: `rtmanager_docker_up == 0 or rtmanager_games{state="failed"} > 0 or rtmanager_games > 1`},
		{Where: "label", Expr: `sum by (status) (mail_delivery_attempts_total{outcom="sent"})`},
		{Where: "variable", Expr: `rtmanager_docker_up`, Label: "state"},
		{Where: "histogram family", Expr: `http_request_duration_seconds`},
	}, live)
	want := []string{
		`missing: metric rtmanager_games is on no service's /metrics`,
		`label: metric mail_delivery_attempts_total (on mail) has no label "outcom"; its labels: [outcome]`,
		`label: metric mail_delivery_attempts_total (on mail) has no label "status"; its labels: [outcome]`,
		`variable: metric rtmanager_docker_up (on rtmanager) has no label "state"; its labels: []`,
		`histogram family: metric http_request_duration_seconds is on no service's /metrics`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("checkQueries =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
