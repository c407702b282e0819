package integration_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/mail/intake"
)

// TestLongPostgresOutageDeadLettersNothing: several Mail replicas share one
// command stream, their workers read full batches while PostgreSQL is down
// (so every entry but the first of each batch waits behind a handler that
// cannot finish), and the outage outlasts MAX_DELIVERIES × CLAIM_IDLE — the
// time in which an entry left idle would be claimed by the other workers
// until its delivery budget is spent. When PostgreSQL is back, every command
// is one delivery, sent once (one message at the SMTP server), and nothing
// was dead-lettered.
//
// PostgreSQL is the durable one and is killed, as in a crash: a command
// missing afterwards is the service's loss, not the test server's.
func TestLongPostgresOutageDeadLettersNothing(t *testing.T) {
	const (
		claimIdle     = time.Second
		maxDeliveries = 3
		replicas      = 3
		workers       = 4  // MAIL_COMMANDS_CONCURRENCY of each replica
		readBatch     = 16 // what one of Mail's workers reads at once
		// Two full batches: two workers each hold one, and the other
		// replicas×workers−2 are free to claim whatever of them goes idle.
		commands = 2 * readBatch
	)
	// A worker polls for idle entries every CLAIM_IDLE/4, so an idle entry
	// changes hands at most every CLAIM_IDLE×5/4; MAX_DELIVERIES such hops
	// and one more (the one that would dead-letter it) fit in the outage,
	// with two CLAIM_IDLE of margin for a loaded machine.
	outage := time.Duration(maxDeliveries+1)*claimIdle*5/4 + 2*claimIdle

	ctx := t.Context()
	pg := harness.StartDurablePostgres(ctx, t)
	own := infra
	own.PostgresAdminDSN = pg.AdminDSN
	mp := startMailpit(t)
	env := maps.Clone(testEnv)
	maps.Copy(env, smtpEnv(mp.SMTPAddr, map[string]string{
		"MAIL_STREAM_CLAIM_IDLE":     claimIdle.String(),
		"MAIL_STREAM_MAX_DELIVERIES": strconv.Itoa(maxDeliveries),
		"MAIL_COMMANDS_CONCURRENCY":  strconv.Itoa(workers),
	}))
	first := newMailService(t, harness.StartService(ctx, t, harness.ServiceSpec{
		Name: "mail", ProcessName: "mail-outage", Infra: own, Env: env,
	}))
	all := []*mailService{first}
	for range replicas - 1 {
		all = append(all, first.replica(t, nil))
	}

	step := func(what string) { t.Logf("%s: %s", time.Now().Format("15:04:05.000"), what) }
	step("killing PostgreSQL with SIGKILL")
	if err := pg.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()

	// One transaction: the workers blocked on XREADGROUP are served after
	// it, the first two with a full batch each.
	step(fmt.Sprintf("publishing %d commands at once", commands))
	keys := make([]string, commands)
	if _, err := first.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := range keys {
			keys[i] = harness.UniqueName(fmt.Sprintf("outage-%02d", i))
			c := templateCommand(keys[i], fmt.Sprintf("outage-%02d@example.com", i), "en", imagePullVars(keys[i]))
			values := map[string]any{}
			for k, v := range c.StreamValues() {
				values[k] = v
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: first.stream, Values: values})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "every command read by a worker", func() bool {
		p, err := first.rdb.XPending(ctx, first.stream, intake.Group).Result()
		return err == nil && p.Count == commands
	})
	pending, err := first.rdb.XPending(ctx, first.stream, intake.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commands in the workers' hands: %d, by consumer %v", pending.Count, pending.Consumers)
	largest := int64(0)
	for _, n := range pending.Consumers {
		largest = max(largest, n)
	}
	if largest < 2 {
		t.Fatalf("no worker holds more than one command (%v): nothing waits behind a blocked handler", pending.Consumers)
	}

	step(fmt.Sprintf("keeping PostgreSQL down for %s (MAX_DELIVERIES %d × CLAIM_IDLE %s, plus margin)", outage, maxDeliveries, claimIdle))
	time.Sleep(time.Until(killedAt.Add(outage)))
	t.Logf("dead-lettered during the outage: %d", len(first.deadLetters()))

	step("starting PostgreSQL again")
	restartedAt := time.Now()
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first.settled(2 * time.Minute)
	t.Logf("settled %s after the restart", time.Since(restartedAt).Round(10*time.Millisecond))
	for _, s := range all {
		t.Logf("%s: %s", s.proc.Name(), streamOutcomes(t, s))
	}

	var failures []string
	if dead := first.deadLetters(); len(dead) > 0 {
		failures = append(failures, fmt.Sprintf("%d of %d commands dead-lettered, the first: %v", len(dead), commands, dead[0].Values["dead_error"]))
	}
	deliveryOf := map[string]string{} // delivery ID → idempotency key
	for _, key := range keys {
		items := first.list(harness.DeliveryQuery{IdempotencyKey: key})
		if len(items) != 1 {
			failures = append(failures, fmt.Sprintf("%s: %d deliveries, want 1", key, len(items)))
			continue
		}
		d := first.get(items[0].DeliveryID)
		if d.Status != "sent" || len(d.Attempts) != 1 {
			failures = append(failures, fmt.Sprintf("%s: status %q after %d attempts, want sent after 1", key, d.Status, len(d.Attempts)))
		}
		deliveryOf[d.DeliveryID] = key
	}
	received := map[string]int{}
	messages, err := mp.Client().Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range messages {
		// Mail's Message-ID is <delivery ID>.<sequence>@….
		id, _, _ := strings.Cut(m.MessageID, ".")
		received[id]++
	}
	for id, key := range deliveryOf {
		if received[id] != 1 {
			failures = append(failures, fmt.Sprintf("%s: %d messages at the SMTP server, want 1", key, received[id]))
		}
	}
	if len(messages) != len(deliveryOf) {
		failures = append(failures, fmt.Sprintf("%d messages at the SMTP server for %d deliveries", len(messages), len(deliveryOf)))
	}
	if len(failures) > 0 {
		t.Fatalf("after an outage of %s:\n%s", outage, strings.Join(failures, "\n"))
	}
}

// streamOutcomes reads a Mail process's stream worker outcomes from its
// /metrics, for the log.
func streamOutcomes(t *testing.T, s *mailService) map[string]string {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.WithoutCancel(t.Context()), s.mail.BaseURL)
	if err != nil {
		t.Fatalf("metrics of %s: %v", s.proc.Name(), err)
	}
	out := map[string]string{}
	for series, v := range m.Matching("stream_entries_total", nil) {
		out[harness.Label(series, "outcome")] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return out
}

// TestPostgresKilledUnderLoadLosesNoCommand: commands flow in steadily, and
// PostgreSQL is killed (SIGKILL) while they are being inserted — a quarter
// of them stored, more arriving — and stays down for longer than
// MAX_DELIVERIES × CLAIM_IDLE. Once it is back every command is exactly one
// delivery, sent, and nothing was dead-lettered: a command Mail
// acknowledged on its stream was committed, and the commit survived the
// crash.
func TestPostgresKilledUnderLoadLosesNoCommand(t *testing.T) {
	pg := harness.StartDurablePostgres(t.Context(), t)
	killUnderLoad(t, pg)
}

// killUnderLoad is TestPostgresKilledUnderLoadLosesNoCommand against pg.
func killUnderLoad(t *testing.T, pg *harness.Postgres) {
	const (
		claimIdle     = time.Second
		maxDeliveries = 3
		commands      = 400
		killAfter     = commands / 4 // deliveries stored before the kill
		gap           = 2 * time.Millisecond
	)
	outage := time.Duration(maxDeliveries+1)*claimIdle*5/4 + 2*claimIdle

	ctx := t.Context()
	own := infra
	own.PostgresAdminDSN = pg.AdminDSN
	env := maps.Clone(testEnv)
	env["MAIL_STREAM_CLAIM_IDLE"] = claimIdle.String()
	env["MAIL_STREAM_MAX_DELIVERIES"] = strconv.Itoa(maxDeliveries)
	env["MAIL_LOG_LEVEL"] = "info"
	first := newMailService(t, harness.StartService(ctx, t, harness.ServiceSpec{
		Name: "mail", ProcessName: "mail-crash", Infra: own, Env: env,
	}))
	first.replica(t, nil)

	keys := make([]string, commands)
	for i := range keys {
		keys[i] = harness.UniqueName(fmt.Sprintf("crash-%03d", i))
	}
	published := make(chan error, 1)
	go func() {
		for i, key := range keys {
			c := templateCommand(key, fmt.Sprintf("crash-%03d@example.com", i), "en", imagePullVars(key))
			values := map[string]any{}
			for k, v := range c.StreamValues() {
				values[k] = v
			}
			if err := first.rdb.XAdd(ctx, &redis.XAddArgs{Stream: first.stream, Values: values}).Err(); err != nil {
				published <- err
				return
			}
			time.Sleep(gap)
		}
		published <- nil
	}()

	eventually(t, 30*time.Second, fmt.Sprintf("%d deliveries stored", killAfter), func() bool {
		items, err := first.mail.AllDeliveries(ctx, harness.DeliveryQuery{Limit: 500})
		return err == nil && len(items) >= killAfter
	})
	if err := pg.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	groups, err := first.rdb.XInfoGroups(ctx, first.stream).Result()
	if err != nil || len(groups) != 1 {
		t.Fatalf("groups of %s: %v %v", first.stream, groups, err)
	}
	t.Logf("killed PostgreSQL with %d commands pending and %d unread", groups[0].Pending, groups[0].Lag)
	if groups[0].Pending+groups[0].Lag == 0 && len(published) == 1 {
		t.Fatal("every command was stored before the kill: nothing was in flight")
	}
	time.Sleep(time.Until(killedAt.Add(outage)))
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	first.settled(2 * time.Minute)

	var failures []string
	if dead := first.deadLetters(); len(dead) > 0 {
		failures = append(failures, fmt.Sprintf("%d of %d commands dead-lettered, the first: %v", len(dead), commands, dead[0].Values["dead_error"]))
	}
	all, err := first.mail.AllDeliveries(ctx, harness.DeliveryQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]harness.Delivery{}
	for _, d := range all {
		byKey[d.IdempotencyKey] = append(byKey[d.IdempotencyKey], d)
	}
	for _, key := range keys {
		ds := byKey[key]
		switch {
		case len(ds) != 1:
			failures = append(failures, fmt.Sprintf("%s: %d deliveries, want 1", key, len(ds)))
		case ds[0].Status != "sent":
			failures = append(failures, fmt.Sprintf("%s: status %q, want sent", key, ds[0].Status))
		}
	}
	if len(all) != commands {
		failures = append(failures, fmt.Sprintf("%d deliveries for %d commands", len(all), commands))
	}
	if len(failures) > 0 {
		t.Fatalf("after PostgreSQL was killed under load and down %s:\n%s", outage, strings.Join(failures, "\n"))
	}
}
