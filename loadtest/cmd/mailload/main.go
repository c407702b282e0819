// Command mailload measures a running Mail Service: it pushes N template
// commands onto the command stream, waits until every one is a sent
// delivery, and reports deliveries per second and the command → sent
// latency (requested_at_ms to sent_at_ms) at p50, p99 and max.
//
// Without -mail it starts what it measures itself, through the harness:
// Redis and PostgreSQL containers from the local images and one mail
// process in stub mode built from this tree, started by harness.StartService
// (its base environment, log level warn). With -mail and -redis it measures
// a service that is already running.
//
// It only talks to loopback or the addresses it is given, its loops are
// bounded by -n and -timeout, and it stops by itself.
//
//	go run ./loadtest/cmd/mailload -n 20000             # burst: throughput
//	go run ./loadtest/cmd/mailload -n 10000 -rate 1000  # paced: latency under a steady load
//	go run ./loadtest/cmd/mailload -redis 127.0.0.1:6379 -mail http://127.0.0.1:8082 -n 20000
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
	"galaxy/mail/command"
	"galaxy/platform/streams"
)

func main() {
	// The harness brings Ginkgo, which registers its flags on the default
	// set; -h should list this tool's own.
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var (
		redisAddr = flag.String("redis", "127.0.0.1:6379", "Redis address of the mail service (with -mail)")
		stream    = flag.String("stream", "mail:delivery_commands", "command stream")
		group     = flag.String("group", "mail", "consumer group of the mail service")
		mailURL   = flag.String("mail", "", "internal HTTP API of a running mail service (default: start one)")
		n         = flag.Int("n", 10000, "commands to push")
		rate      = flag.Int("rate", 0, "commands per second (0: as fast as Redis takes them)")
		pipeline  = flag.Int("pipeline", 200, "commands per Redis round trip")
		timeout   = flag.Duration("timeout", 5*time.Minute, "give up after this long")
		source    = flag.String("source", "", "source of the commands (default: a fresh load-<time>)")
	)
	flag.Parse()
	if *source == "" {
		*source = "load-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tb := harness.NewPackageTB("mailload")
	code := 0
	func() {
		defer tb.Close()
		defer func() {
			if r := recover(); r != nil { // PackageTB.Fatalf panics
				fmt.Fprintln(os.Stderr, "mailload:", r)
				code = 1
			}
		}()
		if *mailURL == "" {
			*redisAddr, *mailURL = startStack(ctx, tb, *stream)
		}
		rdb := streams.NewClient(*redisAddr, "", 0)
		defer rdb.Close()
		mail := harness.NewMailClient(strings.TrimRight(*mailURL, "/"), "")
		if err := run(ctx, rdb, *stream, *group, mail, *source, *n, *rate, *pipeline); err != nil {
			fmt.Fprintln(os.Stderr, "mailload:", err)
			code = 1
		}
	}()
	os.Exit(code)
}

// startStack starts Redis, PostgreSQL and a stub-mode mail process on
// stream, and returns the Redis address and the mail API's URL.
func startStack(ctx context.Context, tb *harness.PackageTB, stream string) (string, string) {
	rds := harness.StartRedis(ctx, tb)
	pg := harness.StartPostgres(ctx, tb)
	infra := harness.Infra{
		RedisAddr:        rds.Addr,
		PostgresAdminDSN: pg.AdminDSN,
		Binaries:         harness.BuildBinaries(tb, harness.ServicePackages["mail"]),
	}
	mail := harness.StartService(ctx, tb, harness.ServiceSpec{
		Name:    "mail",
		Infra:   infra,
		Streams: harness.PipelineStreams{MailCommands: stream},
		Env:     map[string]string{"MAIL_LOG_LEVEL": "warn"},
	})
	fmt.Printf("started redis %s, postgres, mail %s (stub mode)\n", infra.RedisAddr, mail.URL)
	return infra.RedisAddr, mail.URL
}

func run(ctx context.Context, rdb *redis.Client, stream, group string, mail *harness.MailClient, source string, n, rate, pipeline int) error {
	if n <= 0 || pipeline <= 0 {
		return fmt.Errorf("-n and -pipeline must be positive")
	}
	fmt.Printf("pushing %d commands to %s (source %s, rate %s)\n", n, stream, source, rateText(rate))
	start := time.Now()
	if err := push(ctx, rdb, stream, source, n, rate, pipeline); err != nil {
		return err
	}
	pushed := time.Since(start)
	fmt.Printf("pushed in %s (%.0f commands/s)\n", pushed.Round(time.Millisecond), float64(n)/pushed.Seconds())
	if err := waitDrained(ctx, rdb, stream, group, mail, source); err != nil {
		return err
	}
	items, err := mail.AllDeliveries(ctx, harness.DeliveryQuery{Source: source})
	if err != nil {
		return err
	}
	return report(items, n)
}

func rateText(rate int) string {
	if rate <= 0 {
		return "unlimited"
	}
	return strconv.Itoa(rate) + "/s"
}

func push(ctx context.Context, rdb *redis.Client, stream, source string, n, rate, pipeline int) error {
	vars := map[string]any{
		"game_id":         "load-game",
		"image_ref":       "galaxy/load:1",
		"error_code":      "image_pull_failed",
		"error_message":   "manifest unknown",
		"attempted_at_ms": json.Number("1700000000000"),
	}
	var interval time.Duration
	if rate > 0 {
		// Pace whole pipelines: one round trip every pipeline/rate seconds.
		if pipeline > rate/10 && rate >= 10 {
			pipeline = rate / 10
		}
		interval = time.Duration(float64(time.Second) * float64(pipeline) / float64(rate))
	}
	next := time.Now()
	for i := 0; i < n; {
		p := rdb.Pipeline()
		for j := 0; j < pipeline && i < n; j, i = j+1, i+1 {
			c := command.Command{
				Source:         source,
				PayloadMode:    command.ModeTemplate,
				TemplateID:     "runtime.image_pull_failed",
				Locale:         "en",
				Variables:      vars,
				To:             []string{fmt.Sprintf("load-%d@example.com", i%100)},
				IdempotencyKey: source + "/" + strconv.Itoa(i),
				RequestedAtMS:  time.Now().UnixMilli(),
			}
			values := c.StreamValues()
			args := make(map[string]any, len(values))
			for k, v := range values {
				args[k] = v
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: args})
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("push to %s: %w", stream, err)
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
	}
	return nil
}

// waitDrained waits until the group has read and acknowledged every entry
// (so every command is stored) and no delivery of the source is still
// queued or being sent.
func waitDrained(ctx context.Context, rdb *redis.Client, stream, group string, mail *harness.MailClient, source string) error {
	for {
		done, err := drained(ctx, rdb, stream, group, mail, source)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not drained in time: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func drained(ctx context.Context, rdb *redis.Client, stream, group string, mail *harness.MailClient, source string) (bool, error) {
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", stream, err)
	}
	found := false
	for _, g := range groups {
		if g.Name == group {
			found = true
			if g.Lag != 0 || g.Pending != 0 {
				return false, nil
			}
		}
	}
	if !found {
		return false, nil
	}
	for _, status := range []string{"queued", "sending", "retrying"} {
		items, _, err := mail.Deliveries(ctx, harness.DeliveryQuery{Source: source, Status: status, Limit: 1})
		if err != nil {
			return false, err
		}
		if len(items) > 0 {
			return false, nil
		}
	}
	return true, nil
}

func report(items []harness.Delivery, n int) error {
	var lat []float64 // milliseconds
	first, last := int64(0), int64(0)
	failed := 0
	for _, it := range items {
		if it.Status != "sent" || it.SentAtMS == nil {
			failed++
			continue
		}
		lat = append(lat, float64(*it.SentAtMS-it.RequestedAtMS))
		if first == 0 || it.RequestedAtMS < first {
			first = it.RequestedAtMS
		}
		if *it.SentAtMS > last {
			last = *it.SentAtMS
		}
	}
	if len(items) != n {
		return fmt.Errorf("%d deliveries found for %d commands", len(items), n)
	}
	if len(lat) == 0 {
		return fmt.Errorf("no delivery was sent (%d not sent)", failed)
	}
	q := quantile.Summarize(lat)
	span := time.Duration(last-first) * time.Millisecond
	if span <= 0 {
		span = time.Millisecond
	}
	fmt.Printf("deliveries: %d sent, %d not sent\n", len(lat), failed)
	fmt.Printf("throughput: %.0f deliveries/s (first command to last sent: %s)\n", float64(len(lat))/span.Seconds(), span)
	fmt.Printf("command→sent latency: p50 %.0fms, p99 %.0fms, max %.0fms\n", q.P50, q.P99, q.Max)
	if failed > 0 {
		return fmt.Errorf("%d deliveries not sent", failed)
	}
	return nil
}
