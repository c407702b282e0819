package monitoring

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/onsi/gomega"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"galaxy/harness"
)

// pkg holds what the live test starts; see infra.
var pkg = harness.NewPackageTB("monitoring")

func TestMain(m *testing.M) {
	code := m.Run()
	pkg.Close()
	os.Exit(code)
}

// infra is Redis, PostgreSQL, a registry (for an image it does not have)
// and the four service binaries, started on first use: the checks of the
// files themselves need no container.
var infra = sync.OnceValue(func() harness.Infra {
	ctx := context.Background()
	harness.RequireDocker(pkg)
	harness.EnsureLocalImages(ctx, pkg)
	reg := harness.StartRegistry(ctx, pkg)
	return harness.Infra{
		RedisAddr:        harness.StartRedis(ctx, pkg).Addr,
		PostgresAdminDSN: harness.StartPostgres(ctx, pkg).AdminDSN,
		RegistryHost:     reg.Host,
		MissingImage:     reg.Ref("galaxy/monitoring-missing", "never-pushed"),
		Binaries:         harness.BuildBinaries(pkg, harness.ServicePackagePaths()...),
		DockerHost:       harness.DockerHost(),
	}
})

// operationsDoc is the page the runbook annotations point into.
const operationsDoc = "docs/operations.md"

// severities are the values the routing of alerts knows: critical pages,
// warning waits for working hours.
var severities = []string{"critical", "warning"}

func TestRulesLoadAsPrometheusLoadsThem(t *testing.T) {
	groups, errs := Rules()
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, operationsDoc))
	if err != nil {
		t.Fatal(err)
	}
	anchors := headingAnchors(string(doc))
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: group %s, alert %s", AlertsFile, g.Name, r.Alert)
			if r.Alert == "" {
				t.Errorf("%s: group %s holds a recording rule %s; the file is for alerts", AlertsFile, g.Name, r.Record)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s: a second alert of that name", where)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; !slices.Contains(severities, s) {
				t.Errorf("%s: severity %q, want one of %v", where, s, severities)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			page, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
			if page != operationsDoc || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is no heading of %s", where, r.Annotations["runbook_url"], operationsDoc)
			}
		}
	}
	if len(seen) == 0 {
		t.Errorf("%s: no alerts", AlertsFile)
	}
}

func TestDashboardIsWellFormed(t *testing.T) {
	d, err := ParseDashboard()
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: uid %q, title %q, schemaVersion %d; want both set and a schema of Grafana 9.3 or later", DashboardFile, d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("%s: variable %s is %q, want a %s variable", DashboardFile, name, vars[name], typ)
		}
	}
	// Every query names the data source variable, so the dashboard imports
	// into any Grafana whatever its Prometheus data source is called.
	checkSource := func(where string, ds *Datasource) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want prometheus ${datasource}", where, ds)
		}
	}
	ids := map[int]string{}
	for _, p := range d.AllPanels() {
		where := fmt.Sprintf("%s: panel %d %q", DashboardFile, p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id also of panel %q", where, other)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		checkSource(where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			where := where + ", target " + tg.RefID
			checkSource(where, tg.Datasource)
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: no expr", where)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId empty or used twice", where)
			}
			refs[tg.RefID] = true
		}
	}
	if len(ids) == 0 {
		t.Errorf("%s: no panels", DashboardFile)
	}
}

func TestEveryQueryParses(t *testing.T) {
	queries, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		sels, err := Selectors(q.Expr)
		if err != nil {
			t.Errorf("%s: %s: %v", q.Where, q.Expr, err)
		} else if len(sels) == 0 {
			t.Errorf("%s: %s selects no metric", q.Where, q.Expr)
		}
	}
}

// prometheusSeries are the series Prometheus makes itself rather than
// scrapes: no service exposes them.
var prometheusSeries = []string{"up", "ALERTS"}

// targetLabels are the labels Prometheus gives every scraped series from
// its scrape configuration.
var targetLabels = []string{"job", "instance"}

// TestQueriesUseOnlyLiveMetrics runs the four services on real Redis,
// PostgreSQL, Docker and SMTP (Mailpit), has a start fail for an image the registry does not
// have — the Runtime Manager's failed job, Notification's admin route and
// Mail's sent mail give the labelled counters their series — and checks that
// every metric and label the rules and the dashboard name is on the
// services' /metrics.
func TestQueriesUseOnlyLiveMetrics(t *testing.T) {
	queries, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	harness.ConfigureGomega(t)
	g := gomega.NewWithT(t)
	inf := infra()

	// Mail in smtp mode: the stub records its attempt at intake, where the
	// sender's metrics do not see it.
	mailpit := harness.StartMailpit(ctx, t)
	admin := harness.UniqueName("oncall") + "@example.com"
	p := harness.StartPipeline(ctx, t, inf, harness.PipelineOptions{
		AdminEmails: map[string]string{"runtime.image_pull_failed": admin},
		SMTPAddr:    mailpit.SMTPAddr,
	})
	gameID := harness.UniqueName("monitoring")
	if _, err := p.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": inf.MissingImage}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(ctx, func(g gomega.Gomega) {
		ds, _, err := p.MailClient().Deliveries(ctx, harness.DeliveryQuery{Recipient: admin})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(ds).To(gomega.ConsistOf(gomega.HaveField("Status", "sent")))
	}).Should(gomega.Succeed(), "the admin mail of the failed start of %s", gameID)
	got, err := mailpit.Client().Search(ctx, "to:"+admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0].Subject, gameID) {
		t.Fatalf("the SMTP server got %+v for %s, want one mail naming %s", got, admin, gameID)
	}
	settle, cancelSettle := context.WithTimeout(ctx, time.Minute)
	defer cancelSettle()
	if err := p.Settled(settle); err != nil {
		t.Fatal(err)
	}

	scrapes := map[string]harness.Metrics{}
	for name, url := range map[string]string{"userservice": p.UserURL, "mail": p.MailURL, "notification": p.NotificationURL, "rtmanager": p.RTManagerURL} {
		m, err := harness.ScrapeMetrics(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		scrapes[name] = m
	}

	// The failed start is in the series the dashboard's first rows plot.
	for _, want := range []struct {
		service, series string
		value           float64
	}{
		{"rtmanager", `rtmanager_jobs_total{error_code="image_pull_failed",kind="start",outcome="failed"}`, 1},
		{"rtmanager", `rtmanager_games{state="failed"}`, 1},
		{"rtmanager", `rtmanager_docker_up`, 1},
		{"rtmanager", `rtmanager_outbox_unpublished_entries`, 0},
		{"notification", `notification_intents_total{outcome="accepted"}`, 1},
		{"notification", `notification_routes_total{status="routed"}`, 1},
		{"notification", `notification_dead_routes`, 0},
		{"mail", `mail_delivery_attempts_total{outcome="sent"}`, 1},
		{"mail", `mail_deliveries_finished_total{status="sent"}`, 1},
		{"mail", `mail_oldest_waiting_delivery_age_seconds`, 0},
	} {
		got, ok := scrapes[want.service][want.series]
		switch {
		case !ok:
			t.Errorf("%s /metrics: no series %s", want.service, want.series)
		case got != want.value:
			t.Errorf("%s /metrics: %s = %g, want %g", want.service, want.series, got, want.value)
		}
	}

	live, err := indexMetrics(scrapes)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range checkQueries(queries, live) {
		t.Error(problem)
	}
}

// checkQueries returns what live lacks of the metrics and labels the
// queries use: one line per query and metric (or label), naming both.
func checkQueries(queries []Query, live map[string]*liveMetric) []string {
	var out []string
	reported := map[string]bool{}
	failf := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !reported[msg] {
			reported[msg] = true
			out = append(out, msg)
		}
	}
	for _, q := range queries {
		sels, err := Selectors(q.Expr)
		if err != nil {
			failf("%s: %v", q.Where, err)
			continue
		}
		for _, s := range sels {
			if slices.Contains(prometheusSeries, s.Metric) {
				continue
			}
			m, ok := live[s.Metric]
			if !ok {
				failf("%s: metric %s is on no service's /metrics", q.Where, s.Metric)
				continue
			}
			want := s.Labels
			if q.Label != "" {
				want = slices.Concat(want, []string{q.Label})
			}
			for _, l := range want {
				if !slices.Contains(targetLabels, l) && !m.labels[l] {
					failf("%s: metric %s (on %s) has no label %q; its labels: %v", q.Where, s.Metric,
						strings.Join(slices.Sorted(maps.Keys(m.services)), ", "), l, slices.Sorted(maps.Keys(m.labels)))
				}
			}
		}
	}
	return out
}

// liveMetric is what the services' scrapes say of one metric name: which
// services expose it and under which label names.
type liveMetric struct {
	services map[string]bool
	labels   map[string]bool
}

// indexMetrics reads the series of each service's scrape back with
// Prometheus' parser (harness.Metrics spells them as PromQL does:
// name{label="value",…}, a histogram as its _bucket, _sum and _count).
func indexMetrics(scrapes map[string]harness.Metrics) (map[string]*liveMetric, error) {
	out := map[string]*liveMetric{}
	p := parser.NewParser(parser.Options{})
	for service, m := range scrapes {
		for series := range m {
			ls, err := p.ParseMetric(series)
			if err != nil {
				return nil, fmt.Errorf("%s series %s: %w", service, series, err)
			}
			name := ls.Get(model.MetricNameLabel)
			lm := out[name]
			if lm == nil {
				lm = &liveMetric{services: map[string]bool{}, labels: map[string]bool{}}
				out[name] = lm
			}
			lm.services[service] = true
			ls.Range(func(l labels.Label) {
				if l.Name != model.MetricNameLabel {
					lm.labels[l.Name] = true
				}
			})
		}
	}
	return out, nil
}

// headingAnchors are the anchors a Markdown renderer gives the headings of
// doc, the way GitHub spells them: lower case, spaces as hyphens,
// punctuation dropped. Lines of fenced code blocks are no headings.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for line := range strings.Lines(doc) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
