package integration_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"galaxy/harness"
	"galaxy/platform/streams"
	"galaxy/rtmanager/runner"
	"galaxy/rtmanager/store"
)

// TestRetentionForgetsEndedWorkAndKeepsRunningGames: past the retention, the
// job outcomes, the published outbox rows, the runtimes of stopped games and
// the entries of the streams the manager consumes or alone reads are
// deleted; a running game keeps its runtime and its container, and the
// intents stream, Notification's to trim, is left alone.
func TestRetentionForgetsEndedWorkAndKeepsRunningGames(t *testing.T) {
	const (
		retention = 2 * time.Second
		interval  = 200 * time.Millisecond
	)
	m := startFaultManager(t, map[string]string{
		"RTMANAGER_STREAM_RETENTION":      retention.String(),
		"RTMANAGER_STREAM_DEAD_RETENTION": retention.String(),
		"RTMANAGER_RECORD_RETENTION":      retention.String(),
		"RTMANAGER_HOUSEKEEPING_INTERVAL": interval.String(),
	})
	ctx := context.Background()
	running, stopped, invalid := gameID(t)+"-running", gameID(t)+"-stopped", gameID(t)+"-invalid"
	jobs := map[string]string{} // job ID → kind
	for _, g := range []string{running, stopped} {
		jobs[m.publishStart(t, g)] = runner.KindStart
	}
	invalidID, err := streams.Publish(ctx, m.rdb, m.svc.Streams.StartJobs, startValues(invalid, shared.gameImage, "config_json", `{"port":0}`))
	if err != nil {
		t.Fatal(err)
	}
	jobs[invalidID] = runner.KindStart
	eventually(t, 60*time.Second, "both starts running", func() bool {
		for _, g := range []string{running, stopped} {
			if rt, err := m.st.Runtime(ctx, g); err != nil || rt.State != store.StateRunning {
				return false
			}
		}
		return true
	})
	jobs[m.publishStop(t, stopped)] = runner.KindStop
	eventually(t, 60*time.Second, "the stop done", func() bool {
		rt, err := m.st.Runtime(ctx, stopped)
		return err == nil && rt.State == store.StateStopped
	})
	if n := len(m.intentsOf(t, invalid)); n != 1 {
		t.Fatalf("intents about the invalid start = %d; want 1", n)
	}
	kept := m.row(t, running)

	db, err := pgx.Connect(ctx, m.svc.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	count := func(table string) int64 {
		var n int64
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	}
	xlen := func(stream string) int64 {
		n, err := m.rdb.XLen(ctx, stream).Result()
		if err != nil {
			t.Fatalf("XLEN %s: %v", stream, err)
		}
		return n
	}
	s := m.svc.Streams
	eventually(t, 10*retention+20*interval, "the ended work forgotten", func() bool {
		_, err := m.st.Runtime(ctx, stopped)
		return errors.Is(err, store.ErrNotFound) && count("runtime_jobs") == 0 && count("runtime_outbox") == 0 &&
			xlen(s.StartJobs) == 0 && xlen(s.StopJobs) == 0 && xlen(s.JobResults) == 0
	})
	for id, kind := range jobs {
		if _, err := m.st.Job(ctx, kind, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s job %s: %v; want its outcome deleted", kind, id, err)
		}
	}
	if rt := m.row(t, running); rt.State != store.StateRunning || rt.ContainerID != kept.ContainerID {
		t.Errorf("running game's runtime = %+v; want it kept as %+v", rt, kept)
	}
	if c, err := harness.ContainersForGame(ctx, running); err != nil || len(c) != 1 || c[0] != kept.ContainerID {
		t.Errorf("running game's containers = %v, %v; want its own %s", c, err, kept.ContainerID)
	}
	if n := xlen(s.Intents); n != 1 {
		t.Errorf("intents stream has %d entries; want the one intent, left for Notification to trim", n)
	}
}
