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

// TestOutcomeRecordedButNotPublishedIsPublishedOnce simulates a crash after
// the outcome was committed and before anything was published: the
// redelivery publishes the result and the intent, once, and a concurrent
// outbox sweep does not add a second copy.
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
	// The redelivery and the sweeper race to publish.
	ctx, cancel := context.WithCancel(context.Background())
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
	time.Sleep(time.Second) // a sweep or two
	if n := len(e.results(g)); n != 1 {
		t.Errorf("%d results", n)
	}
	if n := len(e.intents(g)); n != 1 {
		t.Errorf("%d intents", n)
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
