// Package monitoring holds the Prometheus alerting rules (alerts.yaml) and
// the Grafana dashboard (dashboard.json) of the Galaxy services, embedded,
// and reads back every PromQL expression they hold with Prometheus' own
// parsers. Its tests check the rules the way Prometheus loads them, and
// check every metric and label the expressions name against the /metrics of
// the four services running for real: a renamed metric fails the build of
// the monitoring, not a night of an on-call engineer (docs/operations.md).
package monitoring

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// AlertsFile and DashboardFile are the files' names in this folder, as the
// errors name them.
const (
	AlertsFile    = "deploy/monitoring/alerts.yaml"
	DashboardFile = "deploy/monitoring/dashboard.json"
)

var (
	//go:embed alerts.yaml
	alertsYAML []byte
	//go:embed dashboard.json
	dashboardJSON []byte
)

// AlertsYAML is the rule file as shipped.
func AlertsYAML() []byte { return bytes.Clone(alertsYAML) }

// DashboardJSON is the dashboard as shipped.
func DashboardJSON() []byte { return bytes.Clone(dashboardJSON) }

// promQL is the parser Prometheus itself uses, with its default functions.
var promQL = parser.NewParser(parser.Options{})

// Rules parses the rule file as Prometheus loads it: unknown fields, a bad
// duration, an expression or annotation template that does not parse are
// errors, every one of them returned.
func Rules() (*rulefmt.RuleGroups, []error) {
	logger := slog.New(slog.DiscardHandler)
	groups, errs := rulefmt.Parse(alertsYAML, false, model.LegacyValidation, promQL, logger)
	for i, err := range errs {
		errs[i] = fmt.Errorf("%s: %w", AlertsFile, err)
	}
	return groups, errs
}

// Dashboard is the part of a Grafana dashboard the checks read.
type Dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
}

// Panel is a dashboard panel; a row may hold its panels (collapsed).
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	Expr       string      `json:"expr"`
}

// Datasource names the data source a panel or query uses.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a templating variable; Definition holds a query variable's
// query (label_values(...)).
type Variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Definition string `json:"definition"`
}

// Annotation is an annotation query; Expr is empty for Grafana's built-in
// one.
type Annotation struct {
	Name       string      `json:"name"`
	Datasource *Datasource `json:"datasource"`
	Expr       string      `json:"expr"`
}

// ParseDashboard decodes the dashboard; an unknown field is no error
// (Grafana writes many this package does not read).
func ParseDashboard() (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return d, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	return d, nil
}

// AllPanels lists the panels, those inside rows included, in order.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Query is one PromQL expression of the rules or the dashboard, with where
// it stands, for messages: `deploy/monitoring/alerts.yaml: alert X`.
type Query struct {
	Where string
	// Expr is what Prometheus is sent: Grafana's variables are replaced
	// (ExpandGrafana).
	Expr string
	// Label, for a label_values variable, is the label whose values it
	// lists; it must exist on the selector's metric.
	Label string
}

// Queries lists every PromQL expression of both files: each rule's, each
// panel target's, each query variable's selector and each annotation's.
func Queries() ([]Query, error) {
	groups, errs := Rules()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []Query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := "alert " + r.Alert
			if r.Record != "" {
				name = "record " + r.Record
			}
			out = append(out, Query{Where: AlertsFile + ": group " + g.Name + ", " + name, Expr: r.Expr})
		}
	}
	d, err := ParseDashboard()
	if err != nil {
		return nil, err
	}
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{
				Where: fmt.Sprintf("%s: panel %d %q, target %s", DashboardFile, p.ID, p.Title, t.RefID),
				Expr:  ExpandGrafana(t.Expr),
			})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		selector, label, err := LabelValues(v.Definition)
		if err != nil {
			return nil, fmt.Errorf("%s: variable %s: %w", DashboardFile, v.Name, err)
		}
		out = append(out, Query{Where: fmt.Sprintf("%s: variable %s", DashboardFile, v.Name), Expr: ExpandGrafana(selector), Label: label})
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, Query{Where: fmt.Sprintf("%s: annotation %q", DashboardFile, a.Name), Expr: ExpandGrafana(a.Expr)})
		}
	}
	return out, nil
}

var (
	grafanaIntervals = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)
	grafanaVariables = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
)

// ExpandGrafana replaces what Grafana substitutes before it sends a query:
// the interval variables by 5m, and every dashboard variable ($job,
// ${instance}) by .+, the value of "All" here. Every variable of this
// dashboard stands in a regular-expression matcher, so the result is the
// query Prometheus gets with everything selected.
func ExpandGrafana(expr string) string {
	expr = grafanaIntervals.ReplaceAllString(expr, "5m")
	return grafanaVariables.ReplaceAllString(expr, ".+")
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// LabelValues splits a Grafana query variable's label_values(selector,
// label); the one-argument form label_values(label), which asks every
// series, is refused: it lists values of other systems too.
func LabelValues(definition string) (selector, label string, err error) {
	m := labelValues.FindStringSubmatch(definition)
	if m == nil {
		return "", "", fmt.Errorf("query %q is not label_values(<metric selector>, <label>)", definition)
	}
	return m[1], m[2], nil
}

// Selector is one series selector of an expression: the metric it selects
// and the label names the expression relies on for it — its matchers' and
// those of the aggregations around it that group `by` them.
type Selector struct {
	Metric string
	Labels []string
}

// Selectors parses expr with Prometheus' parser and returns its selectors,
// in the order they appear. A selector without a metric name (only
// matchers, or a __name__ that is not an equality) is an error: its metric
// could not be checked.
func Selectors(expr string) ([]Selector, error) {
	root, err := promQL.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []Selector
	var bad []string
	parser.Inspect(root, func(node parser.Node, path []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := Selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				if m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Labels = append(s.Labels, m.Name)
		}
		for _, n := range path {
			if agg, ok := n.(*parser.AggregateExpr); ok && !agg.Without {
				s.Labels = append(s.Labels, agg.Grouping...)
			}
		}
		if s.Metric == "" {
			bad = append(bad, vs.String())
			return nil
		}
		slices.Sort(s.Labels)
		s.Labels = slices.Compact(s.Labels)
		out = append(out, s)
		return nil
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("selectors without a metric name: %s", strings.Join(bad, ", "))
	}
	return out, nil
}
