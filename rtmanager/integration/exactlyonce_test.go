package integration_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"galaxy/platform/streams"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/outbox"
)

// TestRedeliveredJobPublishesNothingTwice delivers the same entry again
// after it was handled — as after a lost XACK — for a failed and a
// successful start, and checks one result and at most one intent each.
func TestRedeliveredJobPublishesNothingTwice(t *testing.T) {
	e := newEnv(t, options{})
	failing, running := gameID(t), gameID(t)
	failID, runID := newEntryID(), newEntryID()
	failValues := startValues(failing, "galaxy/integration-missing:0.0.0")
	runValues := startValues(running, shared.gameImage, "config_json", gameConfig(t, nil))
	for i := range 3 {
		if err := e.handleStart(failID, failValues); err != nil {
			t.Fatalf("delivery %d of the failing job: %v", i, err)
		}
		if err := e.handleStart(runID, runValues); err != nil {
			t.Fatalf("delivery %d of the running job: %v", i, err)
		}
	}
	if n := len(e.results(failing)); n != 1 {
		t.Errorf("failing job: %d results", n)
	}
	if n := len(e.intents(failing)); n != 1 {
		t.Errorf("failing job: %d intents", n)
	}
	if n := len(e.results(running)); n != 1 {
		t.Errorf("running job: %d results", n)
	}
	if ids := e.containersOfGame(running); len(ids) != 1 {
		t.Errorf("running job: containers %v", ids)
	}
}

// TestOutcomeRecordedButNotPublishedIsPublishedOnce simulates the two
// crash windows of the outbox: after the outcome was committed and before
// anything was published (the sweeper publishes it), and after the XADD but
// before the row was marked published (the redelivery finds the Redis marker
// and appends nothing).
func TestOutcomeRecordedButNotPublishedIsPublishedOnce(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	id := newEntryID()
	values := startValues(g, "galaxy/integration-missing:0.0.0")
	// A publisher whose Redis is gone: the outcome is recorded, nothing goes out.
	dead := streams.NewClient("127.0.0.1:1", "", 0)
	t.Cleanup(func() { _ = dead.Close() })
	working := e.run.Outbox
	e.run.Outbox = &outbox.Publisher{Store: e.st, Redis: dead, Logger: working.Logger}
	if err := e.handleStart(id, values); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if n := len(e.results(g)); n != 0 {
		t.Fatalf("published %d results through a dead Redis", n)
	}
	e.run.Outbox = working

	// Window 1: only the sweeper runs, and publishes both entries once.
	ctx, cancel := context.WithCancel(context.Background())
	sweeping := make(chan struct{})
	go func() { _ = working.Run(ctx); close(sweeping) }()
	eventually(t, 10*time.Second, "the sweeper publishes", func() bool {
		return len(e.results(g)) == 1 && len(e.intents(g)) == 1
	})
	cancel()
	<-sweeping

	// Window 2: the rows lose their published mark, as if the process died
	// between XADD and the UPDATE; concurrent redeliveries and a sweeper
	// find the Redis markers and append nothing.
	if _, err := e.pool.Exec(context.Background(), `UPDATE runtime_outbox SET published_at = NULL, entry_id = ''`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = working.Run(ctx) }()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.handleStart(id, values); err != nil {
				t.Errorf("redelivery: %v", err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(time.Second) // a few sweeps
	if n := len(e.results(g)); n != 1 {
		t.Errorf("%d results", n)
	}
	if n := len(e.intents(g)); n != 1 {
		t.Errorf("%d intents", n)
	}
	var unpublished int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM runtime_outbox WHERE published_at IS NULL`).Scan(&unpublished); err != nil {
		t.Fatal(err)
	}
	if unpublished != 0 {
		t.Errorf("%d outbox rows still unmarked", unpublished)
	}
}

// TestConcurrentStartsOfOneGameAreSerialized runs several start jobs for the
// same game through the stream with several workers: one container, every
// job succeeded, and a probe of the lease shows no overlap.
func TestConcurrentStartsOfOneGameAreSerialized(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		w := &streams.Worker{
			Client: e.rdb, Stream: e.startStream, Group: "rtmanager", Consumer: "test-" + strconv.Itoa(i),
			Handler: e.run.HandleStart, Logger: e.run.Logger, Block: 100 * time.Millisecond,
			ClaimIdle: 30 * time.Second, MaxDeliveries: 5, Batch: 1,
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()
	const jobs = 6
	for i := range jobs {
		v := startValues(g, shared.gameImage, "config_json", gameConfig(t, nil), "job_id", g+"-job-"+strconv.Itoa(i))
		if _, err := streams.Publish(ctx, e.rdb, e.startStream, v); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "all job results", func() bool { return len(e.results(g)) == jobs })
	containers := map[string]bool{}
	for _, r := range e.results(g) {
		if field(r, "outcome") != "succeeded" {
			t.Errorf("job %s: %v", field(r, "job_id"), r.Values)
		}
		containers[field(r, "container_id")] = true
	}
	if len(containers) != 1 {
		t.Errorf("jobs reported %d different containers: %v", len(containers), containers)
	}
	if ids := e.containersOfGame(g); len(ids) != 1 {
		t.Errorf("containers of the game: %v", ids)
	}
}

// TestJobThatCannotTakeTheLeaseIsRetriedNotFailed holds the game's lease
// elsewhere: the handler returns an error (the entry stays pending for a
// later delivery) and publishes nothing.
func TestJobThatCannotTakeTheLeaseIsRetriedNotFailed(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	held, err := e.run.Leases.TryAcquire(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	e.run.Cfg.LeaseWait = 300 * time.Millisecond
	id := newEntryID()
	err = e.handleStart(id, startValues(g, "galaxy/integration-missing:0.0.0"))
	if !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("want ErrBusy, got %v", err)
	}
	if n := len(e.results(g)) + len(e.intents(g)); n != 0 {
		t.Fatalf("a job without the lease published %d entries", n)
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.handleStart(id, startValues(g, "galaxy/integration-missing:0.0.0")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(e.results(g)); n != 1 {
		t.Errorf("after the retry: %d results", n)
	}
}

// TestManagersSharingRedisDoNotSuppressEachOthersResults runs two managers
// (own databases and streams, one Redis) on jobs with the same entry ID, as
// two streams hand out in the same millisecond: each publishes its own
// result and intent.
func TestManagersSharingRedisDoNotSuppressEachOthersResults(t *testing.T) {
	a, b := newEnv(t, options{}), newEnv(t, options{})
	id := newEntryID()
	for _, e := range []*env{a, b} {
		g := gameID(t)
		if err := e.handleStart(id, startValues(g, "galaxy/integration-missing:0.0.0")); err != nil {
			t.Fatal(err)
		}
		if n := len(e.results(g)); n != 1 {
			t.Errorf("manager %s: %d results", e.instance, n)
		}
		if n := len(e.intents(g)); n != 1 {
			t.Errorf("manager %s: %d intents", e.instance, n)
		}
	}
}
