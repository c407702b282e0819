// Command retentionsoak runs the whole pipeline with short retention
// settings for many retention horizons and shows whether what the platform
// keeps levels off: Redis memory, every stream and dead-letter stream, and
// every table of the three services with a history. Traffic that never
// stops must not make any of them grow without bound.
//
// It starts the four services through the harness with, for the Runtime
// Manager, Notification and Mail, <P>_STREAM_RETENTION,
// <P>_STREAM_DEAD_RETENTION and <P>_RECORD_RETENTION set to -retention,
// <P>_STREAM_CONSUMER_IDLE to -retention and <P>_HOUSEKEEPING_INTERVAL to a
// tenth of it. It publishes start jobs at -rate for -duration (each its own
// game and an image that does not exist, so each ends as one admin mail) and
// samples every -interval. Once the pipeline has settled it checks that Mail
// sent exactly one mail per job (its sent-attempt counter, since the records
// themselves are gone by then).
//
// The verdict compares, per series, the largest value of the run's last
// third with that of its middle third (both after the first horizon): more
// than 25% (plus a little slack for small counts) is growth, and the exit
// code is 1. The samples go to -out/retention-soak.csv.
//
//	go run ./loadtest/cmd/retentionsoak -rate 20 -duration 5m -retention 30s
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/outbox"
)

const (
	adminAddress     = "soak-admin@example.com"
	notificationType = "runtime.image_pull_failed"
	// growthRatio and growthSlack decide when a series grows: the last
	// third's maximum above middle × ratio + slack.
	growthRatio = 1.25
	growthSlack = 16
)

// windows are the series that the contract keeps longer than any retention
// setting: they grow during a soak shorter than their window, and are
// bounded by it.
var windows = map[string]string{
	// CONTRACTS §3: the same producer and idempotency key are routed once
	// within 7 days; the keys are purged hourly after that.
	"table notification.producer_keys": "kept 7 days (idempotency window)",
}

type options struct {
	rate      float64
	duration  time.Duration
	retention time.Duration
	interval  time.Duration
	out       string
}

func main() {
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var o options
	flag.Float64Var(&o.rate, "rate", 20, "start jobs published per second")
	flag.DurationVar(&o.duration, "duration", 5*time.Minute, "how long to publish")
	flag.DurationVar(&o.retention, "retention", 30*time.Second, "the services' stream, dead-letter and record retention")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "sampling interval")
	flag.StringVar(&o.out, "out", "reports", "directory for retention-soak.csv")
	flag.Parse()
	if o.rate <= 0 || o.retention <= 0 || o.interval <= 0 || o.duration < 6*o.retention {
		fmt.Fprintln(os.Stderr, "retentionsoak: -rate, -retention and -interval must be positive, and -duration at least six retention horizons")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tb := harness.NewPackageTB("retentionsoak")
	code := 0
	func() {
		defer tb.Close()
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "retentionsoak:", r)
				code = 1
			}
		}()
		ok, err := run(ctx, tb, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "retentionsoak:", err)
			code = 1
		} else if !ok {
			code = 1
		}
	}()
	os.Exit(code)
}

func run(ctx context.Context, tb *harness.PackageTB, o options) (bool, error) {
	say("starting Redis, PostgreSQL, the registry and building the four services…")
	infra := harness.StartInfra(ctx, tb)
	env := map[string]map[string]string{}
	for _, d := range harness.ServiceDefs() {
		e := map[string]string{d.Prefix + "LOG_LEVEL": "warn"}
		if d.Name != "userservice" {
			for _, v := range []string{"STREAM_RETENTION", "STREAM_DEAD_RETENTION", "RECORD_RETENTION", "STREAM_CONSUMER_IDLE"} {
				e[d.Prefix+v] = o.retention.String()
			}
			e[d.Prefix+"HOUSEKEEPING_INTERVAL"] = (o.retention / 10).String()
		}
		env[d.Name] = e
	}
	p := harness.StartPipeline(ctx, tb, infra, harness.PipelineOptions{
		AdminEmails: map[string]string{notificationType: adminAddress},
		Env:         env,
	})
	g := newGrowth(p)
	image := infra.RegistryHost + "/galaxy/missing-soak:%d"
	prefix := "soak-" + harness.UniqueSuffix() + "-"

	say("publishing %g start jobs/s for %s with a retention of %s; a sample every %s…", o.rate, o.duration, o.retention, o.interval)
	start := time.Now()
	nextSample := start
	published := 0
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Since(start) < o.duration {
		due := int(o.rate * time.Since(start).Seconds())
		for ; published < due; published++ {
			if err := p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: p.Streams.StartJobs, Values: []any{
				"game_id", prefix + strconv.Itoa(published),
				"image_ref", fmt.Sprintf(image, published),
				"requested_at_ms", strconv.FormatInt(time.Now().UnixMilli(), 10),
			}}).Err(); err != nil {
				return false, fmt.Errorf("publish start job %d: %w", published, err)
			}
		}
		if !time.Now().Before(nextSample) {
			if err := g.sample(ctx, time.Since(start)); err != nil {
				return false, err
			}
			say("%s", g.last())
			nextSample = nextSample.Add(o.interval)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
	}
	say("published %d jobs; waiting for the pipeline to settle…", published)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.Settled(sctx); err != nil {
		return false, err
	}
	sent, err := createdMails(ctx, p.MailURL)
	if err != nil {
		return false, err
	}
	if err := g.write(filepath.Join(o.out, "retention-soak.csv")); err != nil {
		return false, err
	}
	flat := g.report(os.Stdout, o)
	fmt.Printf("jobs published %d, mails created and sent %d\n", published, sent)
	if sent != published {
		fmt.Println("FAIL: every job must end as exactly one mail")
		return false, nil
	}
	return flat, nil
}

// growth samples what the platform keeps.
type growth struct {
	p       *harness.Pipeline
	series  []string // column names, fixed by the first sample
	at      []time.Duration
	samples []map[string]int64
}

func newGrowth(p *harness.Pipeline) *growth { return &growth{p: p} }

func (g *growth) streams() []string {
	s := g.p.Streams
	var out []string
	for _, name := range []string{s.StartJobs, s.JobResults, s.Intents, s.MailCommands} {
		out = append(out, name, name+":dead")
	}
	return out
}

func (g *growth) sample(ctx context.Context, at time.Duration) error {
	v := map[string]int64{}
	info, err := g.p.Redis.InfoMap(ctx, "memory").Result()
	if err != nil {
		return fmt.Errorf("redis INFO memory: %w", err)
	}
	mem, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		return fmt.Errorf("redis used_memory: %w", err)
	}
	v["redis used_memory KiB"] = mem / 1024
	for _, prefix := range []string{outbox.MarkerPrefix, lease.FenceKeyPrefix} {
		n, err := countKeys(ctx, g.p.Redis, prefix+"*")
		if err != nil {
			return err
		}
		v["redis keys "+prefix+"*"] = n
	}
	for _, s := range g.streams() {
		n, err := g.p.Redis.XLen(ctx, s).Result()
		if err != nil {
			return fmt.Errorf("XLEN %s: %w", s, err)
		}
		v["stream "+s] = n
	}
	for _, svc := range []string{"rtmanager", "notification", "mail"} {
		if err := tableRows(ctx, g.p.Service(svc).DSN, svc, v); err != nil {
			return err
		}
	}
	if g.series == nil {
		for k := range v {
			g.series = append(g.series, k)
		}
		slices.Sort(g.series)
	}
	g.at = append(g.at, at)
	g.samples = append(g.samples, v)
	return nil
}

// countKeys counts the keys matching pattern (SCAN: never blocks Redis).
func countKeys(ctx context.Context, rdb *redis.Client, pattern string) (int64, error) {
	var n int64
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("scan %s: %w", pattern, err)
	}
	return n, nil
}

// tableRows counts the rows of every table of a service's database.
func tableRows(ctx context.Context, dsn, svc string, into map[string]int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to %s's database: %w", svc, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`)
	if err != nil {
		return fmt.Errorf("list %s's tables: %w", svc, err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list %s's tables: %w", svc, err)
	}
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return fmt.Errorf("count %s.%s: %w", svc, t, err)
		}
		into["table "+svc+"."+t] = n
	}
	return nil
}

func (g *growth) last() string {
	v := g.samples[len(g.samples)-1]
	var parts []string
	for _, k := range []string{"redis used_memory KiB", "stream " + g.p.Streams.MailCommands, "table mail.mail_deliveries", "table notification.notifications", "table rtmanager.runtime_jobs"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, v[k]))
	}
	return strings.Join(parts, ", ")
}

func (g *growth) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(append([]string{"seconds"}, g.series...))
	for i, v := range g.samples {
		row := []string{strconv.FormatFloat(g.at[i].Seconds(), 'f', 1, 64)}
		for _, k := range g.series {
			row = append(row, strconv.FormatInt(v[k], 10))
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// report prints each series' maximum in the middle and last thirds of the
// run after the first horizon, and says whether every one levelled off.
func (g *growth) report(w *os.File, o options) bool {
	var settled []int
	for i, at := range g.at {
		if at >= 2*o.retention {
			settled = append(settled, i)
		}
	}
	if len(settled) < 3 {
		fmt.Fprintln(w, "too few samples after the first horizons to judge growth")
		return false
	}
	third := len(settled) / 3
	middle, last := settled[third:2*third], settled[2*third:]
	peak := func(idx []int, k string) int64 {
		var m int64
		for _, i := range idx {
			m = max(m, g.samples[i][k])
		}
		return m
	}
	flat := true
	fmt.Fprintf(w, "%-60s %10s %10s %10s  %s\n", "series", "first", "middle", "last", "verdict")
	for _, k := range g.series {
		mid, end := peak(middle, k), peak(last, k)
		verdict := "flat"
		if why, ok := windows[k]; ok {
			verdict = why
		} else if float64(end) > float64(mid)*growthRatio+growthSlack {
			verdict, flat = "GROWS", false
		}
		fmt.Fprintf(w, "%-60s %10d %10d %10d  %s\n", k, g.samples[0][k], mid, end, verdict)
	}
	return flat
}

// createdMails reads Mail's count of deliveries created from the stream: in
// stub mode each is sent at once, and a repeated command is counted as a
// duplicate instead.
func createdMails(ctx context.Context, mailURL string) (int, error) {
	m, err := harness.ScrapeMetrics(ctx, mailURL)
	if err != nil {
		return 0, err
	}
	return int(m.Value(`mail_commands_total{door="stream",result="created"}`)), nil
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
