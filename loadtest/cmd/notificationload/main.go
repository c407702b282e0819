// Command notificationload measures the Notification Service: it publishes
// admin intents and watches the mail stream until every one has its mail
// command, then reports intents per second and the hand-off latency.
//
// Latency is the gap between an intent's entry ID and its mail command's entry
// ID: both are stamped by the Redis server's clock, so the figure needs no
// synchronised clocks and includes the time an intent waits in the stream.
//
// Two phases run in turn:
//
//   - burst: -n intents published at once; the service drains the backlog.
//     This gives throughput (intents/s from the first intent to the last
//     mail command). Latencies here measure the backlog, not the service.
//   - paced: -rate intents per second for -duration (open loop). This gives
//     the latency of an unsaturated service (p50, p99, max).
//
// With -spawn it starts everything itself (Redis and PostgreSQL containers
// from the local images, the notification binary built from this checkout)
// and, with -mail, the Mail Service in stub mode, waiting for its deliveries
// too and reporting, per phase, each one's intent → sent latency (the intent's
// entry ID against the delivery's sent_at_ms). Without -spawn it drives
// services that already run (-redis, streams).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/loadtest/quantile"
)

const (
	notificationType = "runtime.image_pull_failed"
	recipient        = "load-admin@example.com"
	routeID          = "email:email:" + recipient
)

type options struct {
	n          int
	rate       int
	duration   time.Duration
	redisAddr  string
	intents    string
	mailStream string
	spawn      bool
	withMail   bool
	mailURL    string
	replicas   int
	extraEnv   string
	timeout    time.Duration
	showLogs   bool
	procs      []*harness.Process
	// published counts the intents of every phase so far.
	published int
}

func main() {
	// The harness brings Ginkgo, which registers its flags on the default
	// set; -h should list this tool's own.
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var o options
	flag.IntVar(&o.n, "n", 20000, "intents in the burst phase (0 skips it)")
	flag.IntVar(&o.rate, "rate", 1000, "intents per second in the paced phase (0 skips it)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of the paced phase")
	flag.StringVar(&o.redisAddr, "redis", "127.0.0.1:6379", "Redis address (without -spawn)")
	flag.StringVar(&o.intents, "intents-stream", "notification:intents", "intent stream (without -spawn)")
	flag.StringVar(&o.mailStream, "mail-stream", "mail:delivery_commands", "mail command stream (without -spawn)")
	flag.StringVar(&o.mailURL, "mail-url", "", "Mail API base URL: also wait for the deliveries to be sent (without -spawn)")
	flag.BoolVar(&o.spawn, "spawn", false, "start Redis, PostgreSQL and the service here")
	flag.BoolVar(&o.withMail, "mail", false, "with -spawn: start the Mail Service too (stub SMTP) and wait for sent deliveries")
	flag.IntVar(&o.replicas, "replicas", 1, "with -spawn: notification processes in the consumer group")
	flag.StringVar(&o.extraEnv, "env", "", "with -spawn: extra NAME=value,NAME=value for the notification processes")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up waiting after this long per phase")
	flag.BoolVar(&o.showLogs, "logs", false, "with -spawn: print the tail of each service's log at the end")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "notificationload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	tb := harness.NewPackageTB("notificationload")
	defer tb.Close()
	defer func() {
		if o.showLogs {
			for _, p := range o.procs {
				fmt.Printf("--- %s log ---\n%s\n", p.Name(), p.LogTail(40))
			}
		}
	}()
	if o.spawn {
		if err := spawn(tb, &o); err != nil {
			return err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	ctx := context.Background()
	fmt.Printf("notificationload: intents %s → mail commands %s", o.intents, o.mailStream)
	if o.mailURL != "" {
		fmt.Printf(" → Mail deliveries at %s", o.mailURL)
	}
	fmt.Println()

	if o.n > 0 {
		// Warm up (connections, prepared plans, the first batch) so the
		// burst measures the steady state.
		if _, err := phase(ctx, rdb, &o, "warm-up", 200, 0); err != nil {
			return err
		}
		r, err := phase(ctx, rdb, &o, "burst", o.n, 0)
		if err != nil {
			return err
		}
		r.print()
	}
	if o.rate > 0 {
		r, err := phase(ctx, rdb, &o, "paced", int(float64(o.rate)*o.duration.Seconds()), o.rate)
		if err != nil {
			return err
		}
		r.print()
	}
	return nil
}

// spawn starts the dependencies and services and points o at them.
func spawn(tb *harness.PackageTB, o *options) error {
	if o.replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1")
	}
	ctx := context.Background()
	redisSrv := harness.StartRedis(ctx, tb)
	pg := harness.StartPostgres(ctx, tb)
	pkgs := []string{harness.ServicePackages["notification"]}
	if o.withMail {
		pkgs = append(pkgs, harness.ServicePackages["mail"])
	}
	infra := harness.Infra{
		RedisAddr:        redisSrv.Addr,
		PostgresAdminDSN: pg.AdminDSN,
		Binaries:         harness.BuildBinaries(tb, pkgs...),
	}
	o.redisAddr = infra.RedisAddr
	streams := harness.NewPipelineStreams()
	o.intents, o.mailStream = streams.Intents, streams.MailCommands

	env := map[string]string{"NOTIFICATION_LOG_LEVEL": "warn"}
	for _, kv := range strings.Split(o.extraEnv, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[strings.TrimSpace(k)] = v
		}
	}
	// No User Service runs: admin routes do not need one, but /readyz
	// would report it down.
	first := harness.StartService(ctx, tb, harness.ServiceSpec{
		Name:        "notification",
		Infra:       infra,
		Streams:     streams,
		AdminEmails: map[string]string{notificationType: recipient},
		Env:         env,
		Wait:        harness.WaitHealthy,
	})
	o.procs = append(o.procs, first.Process)
	for range o.replicas - 1 {
		o.procs = append(o.procs, first.Replica(ctx, tb, nil).Process)
	}
	if o.withMail {
		mail := harness.StartService(ctx, tb, harness.ServiceSpec{
			Name:    "mail",
			Infra:   infra,
			Streams: streams,
			Env:     map[string]string{"MAIL_LOG_LEVEL": "warn"},
		})
		o.procs = append(o.procs, mail.Process)
		o.mailURL = mail.URL
	}
	return nil
}

type result struct {
	name      string
	n         int
	rate      int
	elapsed   time.Duration // first intent → last mail command (Redis clock)
	latencies []time.Duration
	// sentLatencies: intent entry (Redis clock) → the delivery's sent_at_ms
	// (Mail's clock, the same machine), if measured.
	sentLatencies []time.Duration
	// sentSpan: the phase's first intent entry → its last sent_at_ms.
	sentSpan time.Duration
}

// quantiles formats p50, p99 and max of ds.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none measured"
	}
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	q := quantile.Summarize(ms)
	f := func(v float64) time.Duration {
		return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond / 10)
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", f(q.P50), f(q.P99), f(q.Max))
}

func (r result) print() {
	fmt.Printf("%-6s %6d intents", r.name, r.n)
	if r.rate > 0 {
		fmt.Printf(" at %d/s", r.rate)
	}
	fmt.Printf(": %.0f intents/s to mail commands; hand-off latency %s\n",
		float64(r.n)/r.elapsed.Seconds(), quantiles(r.latencies))
	if r.sentSpan > 0 && r.rate == 0 {
		fmt.Printf("%-6s %6d deliveries sent by Mail (stub SMTP): %.0f intents/s end to end (first intent → last sent_at_ms)\n", r.name, r.n, float64(r.n)/r.sentSpan.Seconds())
	}
	if len(r.sentLatencies) > 0 {
		fmt.Printf("%-6s %6d deliveries: intent → sent latency %s\n", r.name, len(r.sentLatencies), quantiles(r.sentLatencies))
	}
}

// phase publishes n intents (all at once, or at rate per second) and waits
// for their mail commands: those whose intent entry comes after the intent
// stream's last entry before the phase.
func phase(ctx context.Context, rdb *redis.Client, o *options, name string, n, rate int) (result, error) {
	from, err := lastID(ctx, rdb, o.mailStream)
	if err != nil {
		return result{}, err
	}
	before, err := lastID(ctx, rdb, o.intents)
	if err != nil {
		return result{}, err
	}
	beforeMS, beforeSeq := splitID(before)
	pubErr := make(chan error, 1)
	go func() { pubErr <- publish(ctx, rdb, o.intents, n, rate) }()

	var latencies []time.Duration
	var firstMS, lastMS int64
	deadline := time.Now().Add(o.timeout + o.duration)
	for len(latencies) < n {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%s: %d of %d mail commands within %s", name, len(latencies), n, o.timeout)
		}
		select {
		case err := <-pubErr:
			if err != nil {
				return result{}, err
			}
		default:
		}
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{o.mailStream, from}, Count: 5000, Block: 100 * time.Millisecond}).Result()
		if err != nil && err != redis.Nil {
			return result{}, err
		}
		for _, s := range res {
			for _, m := range s.Messages {
				from = m.ID
				key, _ := m.Values["idempotency_key"].(string)
				intentID := strings.TrimSuffix(strings.TrimPrefix(key, "notification:"), "/"+routeID)
				ms, seq := splitID(intentID)
				if ms < beforeMS || (ms == beforeMS && seq <= beforeSeq) {
					continue
				}
				if firstMS == 0 || ms < firstMS {
					firstMS = ms
				}
				mailMS, _ := splitID(m.ID)
				latencies = append(latencies, time.Duration(mailMS-ms)*time.Millisecond)
				lastMS = max(lastMS, mailMS)
			}
		}
	}
	o.published += n
	r := result{name: name, n: n, rate: rate, elapsed: time.Duration(lastMS-firstMS) * time.Millisecond, latencies: latencies}
	if r.elapsed <= 0 {
		r.elapsed = time.Millisecond
	}
	if o.mailURL != "" && name != "warm-up" {
		if err := waitSent(ctx, o); err != nil {
			return result{}, err
		}
		sent, err := sentDeliveries(ctx, o.mailURL)
		if err != nil {
			return result{}, err
		}
		var lastSentMS int64
		for _, d := range sent {
			intentID := strings.TrimSuffix(strings.TrimPrefix(d.IdempotencyKey, "notification:"), "/"+routeID)
			ms, seq := splitID(intentID)
			if d.SentAtMS != nil && (ms > beforeMS || (ms == beforeMS && seq > beforeSeq)) {
				r.sentLatencies = append(r.sentLatencies, time.Duration(*d.SentAtMS-ms)*time.Millisecond)
				lastSentMS = max(lastSentMS, *d.SentAtMS)
			}
		}
		r.sentSpan = time.Duration(lastSentMS-firstMS) * time.Millisecond
	}
	return r, nil
}

func lastID(ctx context.Context, rdb *redis.Client, stream string) (string, error) {
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", stream, err)
	}
	if len(last) == 0 {
		return "0-0", nil
	}
	return last[0].ID, nil
}

// publishBatch is the most intents one Redis round trip carries.
const publishBatch = 500

// publish adds n intents: as fast as Redis takes them when rate is 0, else
// at rate per second (pace).
func publish(ctx context.Context, rdb *redis.Client, stream string, n, rate int) error {
	send := func(from, k int) error {
		pipe := rdb.Pipeline()
		for i := from; i < from+k; i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: intent(i)})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	}
	if rate <= 0 {
		for sent := 0; sent < n; sent += publishBatch {
			if err := send(sent, min(publishBatch, n-sent)); err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	return pace(ctx, n, rate, publishBatch, func() time.Duration { return time.Since(start) }, sleep, send)
}

// pace hands n items to send, at most maxBatch per call, so that item i
// (from 0) goes out at dueAt(i, rate) or as soon as possible after it. It
// counts what is due from the time elapsed since the start rather than
// sending a fixed batch per tick, so every rate holds — a fixed batch per
// tick rounds rate to a multiple of the tick rate — and a slow round trip is
// caught up on by the next call instead of lowering the rate.
func pace(ctx context.Context, n, rate, maxBatch int, elapsed func() time.Duration,
	sleep func(context.Context, time.Duration) error, send func(from, k int) error) error {
	for sent := 0; sent < n; {
		now := elapsed()
		if due := min(n, dueBy(now, rate)); due > sent {
			k := min(due-sent, maxBatch)
			if err := send(sent, k); err != nil {
				return err
			}
			sent += k
			continue
		}
		if err := sleep(ctx, dueAt(sent, rate)-now); err != nil {
			return err
		}
	}
	return nil
}

// dueBy is how many items are due elapsed after the start at rate per
// second: the first at once, item i at i/rate seconds. Integer nanoseconds
// keep it exact (rate × elapsed fits in int64 for a day at 100 000/s).
func dueBy(elapsed time.Duration, rate int) int {
	if elapsed < 0 {
		return 0
	}
	return int(int64(elapsed)*int64(rate)/int64(time.Second)) + 1
}

// dueAt is when item i is due: i/rate seconds after the start, rounded up to
// the nanosecond, so that dueBy(dueAt(i, rate), rate) counts item i and a
// sleep until then is never short.
func dueAt(i, rate int) time.Duration {
	return time.Duration((int64(i)*int64(time.Second) + int64(rate) - 1) / int64(rate))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func intent(i int) map[string]any {
	payload, _ := json.Marshal(map[string]any{
		"game_id": "load-" + strconv.Itoa(i), "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
		"error_message": "manifest unknown", "attempted_at_ms": time.Now().UnixMilli(),
	})
	return map[string]any{
		"notification_type": notificationType,
		"producer":          "runtime_manager",
		"audience_kind":     "admin_email",
		"payload_json":      string(payload),
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// waitSent waits until Mail lists as many sent deliveries as intents were
// published so far (Mail's database is this run's own with -spawn).
func waitSent(ctx context.Context, o *options) error {
	deadline := time.Now().Add(o.timeout)
	for {
		sent, err := sentDeliveries(ctx, o.mailURL)
		if err != nil {
			return err
		}
		if len(sent) >= o.published {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mail: %d of %d deliveries sent within %s", len(sent), o.published, o.timeout)
		}
		time.Sleep(time.Second)
	}
}

// sentDeliveries pages through Mail's sent deliveries of the load's type.
func sentDeliveries(ctx context.Context, base string) ([]harness.Delivery, error) {
	mail := harness.NewMailClient(base, "")
	ds, err := mail.AllDeliveries(ctx, harness.DeliveryQuery{Source: "notification", TemplateID: notificationType, Status: "sent"})
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return ds, nil
}

func splitID(id string) (ms, seq int64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseInt(a, 10, 64)
	seq, _ = strconv.ParseInt(b, 10, 64)
	return ms, seq
}
