package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"galaxy/platform/streams"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/lobby"
	"galaxy/rtmanager/runner"
	"galaxy/rtmanager/store"
)

// TestStaleLeaseHolderCannotOverwriteItsSuccessor: a holder whose lease
// expired without it noticing (a paused process) writes after its successor
// has started the game. Every write it attempts — the start marker, the
// container, a job outcome, a fence claim — is refused with ErrFenced, and
// the row, the job table and the streams keep the successor's outcome.
func TestStaleLeaseHolderCannotOverwriteItsSuccessor(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, options{})
	g := gameID(t)
	stale, err := e.run.Leases.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	// Its lease expires in Redis (the key's TTL, here cut short).
	if err := e.rdb.Del(ctx, lease.Key(g)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatalf("the successor's start: %v", err)
	}
	after := e.runtime(g)
	if after.State != store.StateRunning || after.Fence <= stale.Fence {
		t.Fatalf("successor's row: %+v (stale fence %d)", after, stale.Fence)
	}

	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("%s: %v, want ErrFenced", what, err)
			return
		}
		if !strings.Contains(err.Error(), g) {
			t.Errorf("%s: the error does not name the game: %v", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	refused("MarkStarting", e.st.MarkStarting(ctx, store.Runtime{GameID: g, ImageRef: shared.gameImage, Port: 8080, HealthPath: "/healthz", LastJobID: "stale", Fence: stale.Fence}))
	refused("SetContainer", e.st.SetContainer(ctx, g, "stale-container", stale.Fence))
	refused("ClaimFence", e.st.ClaimFence(ctx, g, stale.Fence))
	stopped := after
	stopped.State, stopped.ContainerID, stopped.LastJobID = store.StateStopped, "", "stale-job"
	recorded, err := e.st.FinishJob(ctx, store.Job{
		Kind: "stop", JobID: "stale-job", EntryID: "0-1", GameID: g, Outcome: "succeeded", FinishedAt: time.Now(),
	}, stale.Fence, &stopped, []store.OutboxEntry{{DedupKey: "stale-job:result", Stream: e.resultsStream, Fields: map[string]string{"job_id": "stale-job"}}})
	refused("FinishJob", err)
	if recorded {
		t.Error("FinishJob reported the stale outcome recorded")
	}
	if _, err := e.st.Job(ctx, "stop", "stale-job"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stale job's outcome: %v, want not recorded", err)
	}
	if out, err := e.st.OutboxByKeys(ctx, "stale-job:result"); err != nil || len(out) != 0 {
		t.Errorf("the stale job's outbox entries: %v %v", out, err)
	}
	if rt := e.runtime(g); rt.State != after.State || rt.ContainerID != after.ContainerID || rt.LastJobID != after.LastJobID || rt.Fence != after.Fence {
		t.Errorf("row after the stale writes: %+v, want %+v", rt, after)
	}

	// The loops' transitions write under no lease and keep the fence.
	if _, err := e.st.Transition(ctx, g, func(store.Runtime) bool { return true }, func(r *store.Runtime) { r.Health = store.HealthHealthy }, nil); err != nil {
		t.Fatalf("transition: %v", err)
	}
	if rt := e.runtime(g); rt.Fence != after.Fence || rt.Health != store.HealthHealthy {
		t.Errorf("after a transition: %+v", rt)
	}
}

// TestSupersededStartChangesNothing: a start job paused inside its start
// (its Lobby lookup held) while its lease passes to another handler of the
// same entry — as when the process stalls longer than the lease's TTL and
// the entry is claimed elsewhere — and the successor starts the game. When
// the paused job resumes, its first write is refused (ErrFenced) and it does
// nothing more: one container, the successor's, and the successor's row.
func TestSupersededStartChangesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, options{})
	held := startHeldLobby(t)
	paused := &runner.Runner{
		Store: e.st, Engine: e.engine, Outbox: e.pub, Logger: e.run.Logger, Leases: e.run.Leases, Cfg: e.run.Cfg,
		Lobby: &lobby.Client{BaseURL: held.srv.URL, Timeout: time.Minute},
	}
	g := gameID(t)
	id, values := newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))
	done := make(chan error, 1)
	go func() {
		done <- paused.HandleStart(ctx, streams.Message{Stream: e.startStream, ID: id, Values: values, Deliveries: 1})
	}()
	receive(t, held.arrived, 30*time.Second, "the paused job's Lobby lookup")
	// Its lease expires in Redis while it is paused.
	if err := e.rdb.Del(ctx, lease.Key(g)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.handleStart(id, values); err != nil {
		t.Fatalf("the successor: %v", err)
	}
	after := e.runtime(g)
	held.let()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the paused job did not return")
	}
	if !errors.Is(err, store.ErrFenced) {
		t.Errorf("the paused job: %v, want ErrFenced", err)
	}
	if n := len(e.results(g)); n != 1 {
		t.Errorf("%d results", n)
	}
	if ids := e.containersOfGame(g); len(ids) != 1 || ids[0] != after.ContainerID {
		t.Errorf("containers %v, want only the successor's %s", ids, after.ContainerID)
	}
	if rt := e.runtime(g); rt.State != store.StateRunning || rt.ContainerID != after.ContainerID || rt.Fence != after.Fence {
		t.Errorf("row %+v, want the successor's %+v", rt, after)
	}
}
