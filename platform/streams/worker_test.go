package streams_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/streams"
)

// These tests run against a real Redis from the harness.

var redisAddr string

func TestMain(m *testing.M) {
	// The crash test's child process reuses its parent's Redis.
	if addr := os.Getenv("STREAMS_TEST_REDIS_ADDR"); addr != "" {
		runStuckConsumer(addr, os.Getenv("STREAMS_TEST_STREAM"))
	}
	tb := harness.NewPackageTB("streams")
	redisAddr = harness.StartRedis(context.Background(), tb).Addr
	code := m.Run()
	tb.Close()
	os.Exit(code)
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	c := streams.NewClient(redisAddr, "", 0)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func uniqueStream(t *testing.T) string {
	return fmt.Sprintf("test:%s:%d", t.Name(), time.Now().UnixNano())
}

func runWorker(t *testing.T, w *streams.Worker) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pendingCount(t *testing.T, c *redis.Client, stream, group string) int64 {
	p, err := c.XPending(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func TestHandledEntriesAreAcknowledgedInOrder(t *testing.T) {
	c := redisClient(t)
	stream := uniqueStream(t)
	var mu sync.Mutex
	var got []string
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Handler: func(_ context.Context, m streams.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m.Values["n"])
			return nil
		},
	})
	for i := range 20 {
		if _, err := streams.Publish(context.Background(), c, stream, map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "20 entries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 20 })
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("entry %d out of order: %v", i, got)
		}
	}
	eventually(t, "no pending entries", func() bool { return pendingCount(t, c, stream, "g") == 0 })
}

func TestPoisonEntryIsDeadLetteredWhileLaterEntriesFlow(t *testing.T) {
	c := redisClient(t)
	stream := uniqueStream(t)
	var mu sync.Mutex
	handled := map[string]int{}
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond,
		ClaimIdle: 100 * time.Millisecond, MaxDeliveries: 3,
		Logger: slog.New(slog.DiscardHandler),
		Handler: func(_ context.Context, m streams.Message) error {
			mu.Lock()
			handled[m.Values["kind"]]++
			mu.Unlock()
			switch m.Values["kind"] {
			case "poison":
				return errors.New("cannot handle this one")
			case "malformed":
				return streams.Permanent(errors.New("field x is missing"))
			case "panic":
				panic("boom")
			}
			return nil
		},
	})
	ctx := context.Background()
	for _, kind := range []string{"poison", "ok", "malformed", "panic", "ok"} {
		if _, err := streams.Publish(ctx, c, stream, map[string]string{"kind": kind}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three dead letters", func() bool {
		n, _ := c.XLen(ctx, stream+streams.DeadLetterSuffix).Result()
		return n == 3
	})
	dead, err := c.XRange(ctx, stream+streams.DeadLetterSuffix, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[d.Values["kind"].(string)] = d.Values["dead_error"].(string)
	}
	if reasons["poison"] != "cannot handle this one" || reasons["malformed"] != "field x is missing" || reasons["panic"] != "handler panicked: boom" {
		t.Fatalf("unexpected dead letters: %v", reasons)
	}
	mu.Lock()
	defer mu.Unlock()
	if handled["ok"] != 2 || handled["poison"] != 3 || handled["malformed"] != 1 || handled["panic"] != 3 {
		t.Fatalf("unexpected deliveries: %v", handled)
	}
	if n := pendingCount(t, c, stream, "g"); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
}

// TestKilledConsumerEntryIsReclaimedAndHandledOnce kills a consumer process
// (SIGKILL) while it holds an entry, and checks that another consumer
// reclaims it and that its effect happens exactly once.
func TestKilledConsumerEntryIsReclaimedAndHandledOnce(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	if err := streams.EnsureGroup(ctx, c, stream, "g"); err != nil {
		t.Fatal(err)
	}
	id, err := streams.Publish(ctx, c, stream, map[string]string{"effect": "credit"})
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "STREAMS_TEST_REDIS_ADDR="+redisAddr, "STREAMS_TEST_STREAM="+stream)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child to take the entry", func() bool {
		v, _ := c.Get(ctx, stream+":taken").Result()
		return v == id
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	var effects sync.Map
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Consumer: "survivor", Block: 50 * time.Millisecond,
		ClaimIdle: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Handler: func(ctx context.Context, m streams.Message) error {
			// The effect is idempotent per entry, as handlers must be.
			if _, loaded := effects.LoadOrStore(m.ID, true); !loaded {
				return c.Incr(ctx, stream+":effects").Err()
			}
			return nil
		},
	})
	eventually(t, "the reclaimed entry's effect", func() bool {
		v, _ := c.Get(ctx, stream+":effects").Int()
		return v == 1
	})
	eventually(t, "no pending entries", func() bool { return pendingCount(t, c, stream, "g") == 0 })
	time.Sleep(500 * time.Millisecond) // a second reclaim round must not repeat the effect
	if v, _ := c.Get(ctx, stream+":effects").Int(); v != 1 {
		t.Fatalf("effect happened %d times", v)
	}
}

// runStuckConsumer is the whole life of the crash test's child process: it
// takes one entry and blocks in the handler until killed.
func runStuckConsumer(addr, stream string) {
	c := streams.NewClient(addr, "", 0)
	w := &streams.Worker{
		Client: c, Stream: stream, Group: "g", Consumer: "doomed", Block: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Handler: func(ctx context.Context, m streams.Message) error {
			c.Set(ctx, stream+":taken", m.ID, time.Minute)
			select {} // killed here, before any effect
		},
	}
	_ = w.Run(context.Background())
}

func TestTraceparentTravelsWithTheEntry(t *testing.T) {
	usePropagator(t)
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"traceparent": tp, "x": "1"}}).Result(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Handler: func(ctx context.Context, m streams.Message) error {
			// Re-publishing from the handler carries the same trace on.
			id, err := streams.Publish(ctx, c, stream+":next", map[string]string{"y": "2"})
			if err != nil {
				return err
			}
			next, err := c.XRange(ctx, stream+":next", id, id).Result()
			if err != nil || len(next) != 1 {
				return fmt.Errorf("read back: %v", err)
			}
			got <- next[0].Values["traceparent"].(string)
			return nil
		},
	})
	select {
	case v := <-got:
		if len(v) != len(tp) || v[3:35] != tp[3:35] {
			t.Fatalf("trace id not carried: got %q, want trace of %q", v, tp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("entry not handled")
	}
}

// TestSlowHandlerKeepsItsEntry checks that a handler running longer than
// ClaimIdle is not robbed of its entry by another consumer.
func TestSlowHandlerKeepsItsEntry(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	var mu sync.Mutex
	calls := map[string]int{}
	handler := func(consumer string) streams.Handler {
		return func(context.Context, streams.Message) error {
			mu.Lock()
			calls[consumer]++
			mu.Unlock()
			time.Sleep(1500 * time.Millisecond) // five times ClaimIdle
			return nil
		}
	}
	for _, name := range []string{"a", "b"} {
		runWorker(t, &streams.Worker{
			Client: c, Stream: stream, Group: "g", Consumer: name, Block: 50 * time.Millisecond,
			ClaimIdle: 300 * time.Millisecond, MaxDeliveries: 2, Logger: slog.New(slog.DiscardHandler),
			Handler: handler(name),
		})
	}
	if _, err := streams.Publish(ctx, c, stream, map[string]string{"slow": "1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the entry acknowledged", func() bool {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		return n > 0 && pendingCount(t, c, stream, "g") == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if total := calls["a"] + calls["b"]; total != 1 {
		t.Fatalf("handled %d times (%v), want once", total, calls)
	}
	if n, _ := c.XLen(ctx, stream+streams.DeadLetterSuffix).Result(); n != 0 {
		t.Fatalf("%d dead letters for an entry that was being handled", n)
	}
}

// TestEntryOutlivesAnOutageLongerThanItsDeliveryBudget: a handler whose
// dependency is down fails far more often than MaxDeliveries within far
// longer than MaxDeliveries × ClaimIdle, yet the entry is handled, once, in
// its first delivery, and nothing is dead-lettered.
func TestEntryOutlivesAnOutageLongerThanItsDeliveryBudget(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	var mu sync.Mutex
	var calls int
	var deliveries []int64
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond,
		ClaimIdle: 100 * time.Millisecond, MaxDeliveries: 2, Logger: slog.New(slog.DiscardHandler),
		Handler: func(_ context.Context, m streams.Message) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			deliveries = append(deliveries, m.Deliveries)
			if calls <= 6 { // 0.1+0.2+0.4+0.8+1.6+3.2 s ≈ 6 s of outage
				return streams.Unavailable(errors.New("dial tcp: connection refused"))
			}
			return nil
		},
	})
	if _, err := streams.Publish(ctx, c, stream, map[string]string{"n": "1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the entry handled", func() bool { mu.Lock(); defer mu.Unlock(); return calls == 7 })
	eventually(t, "no pending entries", func() bool { return pendingCount(t, c, stream, "g") == 0 })
	if n, _ := c.XLen(ctx, stream+streams.DeadLetterSuffix).Result(); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range deliveries {
		if d != 1 {
			t.Fatalf("deliveries seen by the handler: %v, want all 1 (retried in place)", deliveries)
		}
	}
}

// TestUnavailableRetriesAreBounded: an error marked Unavailable for good
// still ends in the dead-letter stream once UnavailableFor has passed in
// each of MaxDeliveries deliveries.
func TestUnavailableRetriesAreBounded(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond,
		ClaimIdle: 100 * time.Millisecond, MaxDeliveries: 2, UnavailableFor: 300 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Handler: func(context.Context, streams.Message) error {
			return streams.Unavailable(errors.New("always down"))
		},
	})
	if _, err := streams.Publish(ctx, c, stream, map[string]string{"n": "1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the entry dead-lettered", func() bool {
		n, _ := c.XLen(ctx, stream+streams.DeadLetterSuffix).Result()
		return n == 1
	})
	dead, err := c.XRange(ctx, stream+streams.DeadLetterSuffix, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := dead[0].Values["dead_error"]; got != "always down" {
		t.Fatalf("dead_error = %v", got)
	}
}

// TestBatchBehindABlockedHandlerStaysWithItsConsumer: a worker reads a batch
// of four and its handler is blocked for several ClaimIdle (a dependency
// down) on the first; two other workers of the group are free the whole
// time. The three waiting entries must stay with their consumer — not go
// idle, be claimed by the free workers (each claim a delivery) and be
// dead-lettered once MaxDeliveries claims are spent — and each entry must be
// handled once, in its first delivery.
func TestBatchBehindABlockedHandlerStaysWithItsConsumer(t *testing.T) {
	const (
		claimIdle     = 200 * time.Millisecond
		maxDeliveries = 2
		batch         = 4
		// Long enough for an idle entry to change hands MaxDeliveries
		// times and then some (a worker polls every ClaimIdle/4).
		blocked = 3 * (maxDeliveries + 1) * claimIdle
	)
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	if err := streams.EnsureGroup(ctx, c, stream, "g"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []string // consumer/entry/delivery, in order
	var downUntil time.Time
	handler := func(consumer string) streams.Handler {
		return func(ctx context.Context, m streams.Message) error {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("%s/%s/%d", consumer, m.Values["n"], m.Deliveries))
			until := downUntil
			mu.Unlock()
			// The dependency is down: every handler waits for it.
			sleepUntil(ctx, until)
			return nil
		}
	}
	worker := func(name string) *streams.Worker {
		return &streams.Worker{
			Client: c, Stream: stream, Group: "g", Consumer: name, Block: 50 * time.Millisecond,
			ClaimIdle: claimIdle, MaxDeliveries: maxDeliveries, Batch: batch,
			Logger: slog.New(slog.DiscardHandler), Handler: handler(name),
		}
	}
	mu.Lock()
	downUntil = time.Now().Add(blocked)
	mu.Unlock()
	runWorker(t, worker("holder"))
	// One transaction, so the holder reads all four in one batch.
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := range batch {
			p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"n": strconv.Itoa(i)}})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the holder to read the batch", func() bool {
		p, err := c.XPending(ctx, stream, "g").Result()
		return err == nil && p.Consumers["holder"] == batch
	})
	runWorker(t, worker("free-1"))
	runWorker(t, worker("free-2"))

	eventually(t, "every entry acknowledged", func() bool {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		return n >= batch && pendingCount(t, c, stream, "g") == 0
	})
	// A second round of reclaims must find nothing either.
	time.Sleep(2 * claimIdle)
	dead, err := c.XRange(ctx, stream+streams.DeadLetterSuffix, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var problems []string
	for _, d := range dead {
		problems = append(problems, fmt.Sprintf("entry %v dead-lettered: %v", d.Values["n"], d.Values["dead_error"]))
	}
	want := []string{"holder/0/1", "holder/1/1", "holder/2/1", "holder/3/1"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		problems = append(problems, fmt.Sprintf("handler calls (consumer/entry/delivery) %v, want %v", calls, want))
	}
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
}

// TestEntryTakenByAnotherConsumerIsLeftToIt: while a worker's handler is
// busy with the first entry of its batch, another live consumer claims the
// second (as XCLAIM lets any consumer do). The worker must not take it
// back, nor handle it: the other consumer has it.
func TestEntryTakenByAnotherConsumerIsLeftToIt(t *testing.T) {
	const claimIdle = 200 * time.Millisecond
	c := redisClient(t)
	ctx := context.Background()
	stream := uniqueStream(t)
	if err := streams.EnsureGroup(ctx, c, stream, "g"); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	reg := prometheus.NewRegistry()
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Consumer: "worker", Block: 50 * time.Millisecond,
		ClaimIdle: claimIdle, MaxDeliveries: 3, Batch: 2, Logger: slog.New(slog.DiscardHandler),
		Metrics: streams.NewMetrics(reg),
		Handler: func(ctx context.Context, m streams.Message) error {
			mu.Lock()
			handled = append(handled, m.Values["n"])
			mu.Unlock()
			if m.Values["n"] == "0" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		},
	})
	var second string
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"n": "0"}})
		p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"n": "1"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker to hold both entries, handling the first", func() bool {
		p, err := c.XPending(ctx, stream, "g").Result()
		mu.Lock()
		n := len(handled)
		mu.Unlock()
		return err == nil && p.Consumers["worker"] == 2 && n == 1
	})
	msgs, err := c.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read back: %v %v", msgs, err)
	}
	second = msgs[1].ID
	claim := func() error {
		return c.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: stream, Group: "g", Consumer: "other", MinIdle: 0, Messages: []string{second},
		}).Err()
	}
	if err := claim(); err != nil {
		t.Fatal(err)
	}
	// "other" is alive: it keeps its claim fresh, as a worker does.
	otherCtx, stopOther := context.WithCancel(ctx)
	defer stopOther()
	go func() {
		tick := time.NewTicker(claimIdle / 4)
		defer tick.Stop()
		for {
			select {
			case <-otherCtx.Done():
				return
			case <-tick.C:
				_ = claim()
			}
		}
	}()
	// Several refresh periods pass while the first entry is handled.
	time.Sleep(3 * claimIdle)
	close(release)
	eventually(t, "the worker done with the second entry", func() bool {
		mu.Lock()
		n := len(handled)
		mu.Unlock()
		return n == 2 || outcomes(t, reg)["taken_over"] == 1
	})
	p, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "g", Start: second, End: second, Count: 1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(p) != 1 || p[0].Consumer != "other" || fmt.Sprint(handled) != "[0]" {
		t.Fatalf("the second entry: pending %+v, handled here %v; want it still other's and only the first handled here", p, handled)
	}
}

// outcomes reads the stream_entries_total counters by outcome.
func outcomes(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-time.After(time.Until(t)):
	case <-ctx.Done():
	}
}
