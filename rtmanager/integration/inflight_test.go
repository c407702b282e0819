package integration_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/httpapi"
	"galaxy/platform/streams"
	"galaxy/rtmanager/api"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/outbox"
)

// getInFlight reads GET /api/v1/internal/jobs/in-flight.
func getInFlight(t *testing.T, baseURL string) harness.RTManagerInFlight {
	t.Helper()
	var f harness.RTManagerInFlight
	if err := harness.GetJSON(t.Context(), baseURL+harness.RTManagerInFlightPath, &f); err != nil {
		t.Fatalf("in-flight: %v", err)
	}
	if f.InFlight != f.JobsRunning+f.Unpublished {
		t.Fatalf("in_flight is not the sum: %+v", f)
	}
	return f
}

// TestBinaryInFlightCountsARunningJob: a start job waiting for its game's
// lease (held by someone else) is running, and so is its stream entry
// pending; harness.Settled names both. Once the lease is free the job fails
// its pull, publishes its result and intent, and the counts are zero.
func TestBinaryInFlightCountsARunningJob(t *testing.T) {
	r := startRTManager(t, harness.WaitReady, nil)
	if f := getInFlight(t, r.api.BaseURL); f != (harness.RTManagerInFlight{}) {
		t.Fatalf("fresh manager: %+v", f)
	}
	_, err := harness.DoJSON(t.Context(), harness.Request{URL: r.api.BaseURL + harness.RTManagerInFlightPath + "?verbose=1"}, nil)
	if !isAPIError(err, http.StatusBadRequest, "invalid_request") {
		t.Fatalf("in-flight with a query: %v", err)
	}

	ctx := context.Background()
	g := gameID(t)
	// A token without an owner part is never taken over: the job waits.
	if err := r.rdb.Set(ctx, lease.Key(g), "held-by-the-test", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.rdb.Del(context.Background(), lease.Key(g)).Err() })
	if _, err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.streams.StartJobs, Values: map[string]any{
		"game_id": g, "image_ref": shared.missingImage, "requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Result(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the job running", func() bool {
		return getInFlight(t, r.api.BaseURL) == harness.RTManagerInFlight{JobsRunning: 1, InFlight: 1}
	})

	p := &harness.Pipeline{Redis: r.rdb, RTManagerURL: r.api.BaseURL, Streams: r.streams}
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = p.Settled(sctx)
	var se *harness.SettledError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settled while a job runs = %v, want a *SettledError for the deadline", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "rtmanager: 1 jobs running") || !strings.Contains(msg, p.Streams.StartJobs+"/rtmanager: 1 pending") {
		t.Fatalf("the error does not name the job and its entry: %v", err)
	}
	t.Logf("Settled: %v", err)

	if err := r.rdb.Del(ctx, lease.Key(g)).Err(); err != nil {
		t.Fatal(err)
	}
	sctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Settled(sctx); err != nil {
		t.Fatalf("Settled once the lease is free: %v", err)
	}
	if f := getInFlight(t, r.api.BaseURL); f != (harness.RTManagerInFlight{}) {
		t.Fatalf("in flight after Settled: %+v", f)
	}
	// Settled returned after the job's entries were out, not before.
	results, err := r.rdb.XRange(ctx, p.Streams.JobResults, "-", "+").Result()
	if err != nil || len(results) != 1 || field(results[0], "outcome") != "failed" || field(results[0], "error_code") != "image_pull_failed" {
		t.Fatalf("results after Settled: %v, %v", results, err)
	}
	if intents, err := r.rdb.XLen(ctx, p.Streams.Intents).Result(); err != nil || intents != 1 {
		t.Fatalf("intents after Settled: %d, %v", intents, err)
	}
}

// TestInFlightCountsUnpublishedOutcomes: a job whose outcome was recorded
// while Redis could not be written leaves its result and intent
// unpublished, counted in flight until the outbox sweeper publishes them.
func TestInFlightCountsUnpublishedOutcomes(t *testing.T) {
	e := newEnv(t, options{})
	srv := httpapi.New("127.0.0.1:0", slog.New(slog.DiscardHandler), "", prometheus.NewRegistry())
	api.RegisterInFlight(srv, e.st, e.run)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(runCtx, time.Second); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	base := "http://" + srv.Addr()

	dead := streams.NewClient("127.0.0.1:1", "", 0)
	t.Cleanup(func() { _ = dead.Close() })
	working := e.run.Outbox
	e.run.Outbox = &outbox.Publisher{Store: e.st, Redis: dead, Logger: working.Logger}
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, "galaxy/integration-missing:0.0.0")); err != nil {
		t.Fatalf("start: %v", err)
	}
	e.run.Outbox = working
	if f := getInFlight(t, base); f != (harness.RTManagerInFlight{Unpublished: 2, InFlight: 2}) {
		t.Fatalf("after a failed start with Redis unwritable: %+v, want its result and intent unpublished", f)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sweeping := make(chan struct{})
	go func() { _ = working.Run(ctx); close(sweeping) }()
	t.Cleanup(func() { cancel(); <-sweeping })
	eventually(t, 10*time.Second, "the sweeper publishes", func() bool {
		return getInFlight(t, base) == harness.RTManagerInFlight{}
	})
	if len(e.results(g)) != 1 || len(e.intents(g)) != 1 {
		t.Fatalf("published: %d results, %d intents", len(e.results(g)), len(e.intents(g)))
	}
}
