package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"galaxy/harness"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/monitor"
	"galaxy/rtmanager/store"
)

// runLoops runs the four loops of e until the test ends.
func (e *env) runLoops() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 5)
	for _, loop := range []func(context.Context) error{e.mon.RunProbe, e.mon.RunInspect, e.mon.RunReconcile, e.mon.RunCleanup, e.pub.Run} {
		go func() { _ = loop(ctx); done <- struct{}{} }()
	}
	e.t.Cleanup(func() {
		cancel()
		for range 5 {
			<-done
		}
	})
}

func (e *env) eventsOf(gameID string) []string {
	var out []string
	for _, m := range e.healthEvents(gameID) {
		out = append(out, field(m, "event"))
	}
	return out
}

func TestProbeReportsUnhealthyAfterTheThresholdAndHealthyAgain(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage,
		"config_json", gameConfig(t, map[string]string{"GAME_UNHEALTHY_AFTER": "2s"}))); err != nil {
		t.Fatal(err)
	}
	e.runLoops()
	eventually(t, 30*time.Second, "healthy then unhealthy", func() bool {
		ev := e.eventsOf(g)
		return len(ev) == 2 && ev[0] == "healthy" && ev[1] == "unhealthy"
	})
	rt := e.runtime(g)
	if rt.State != store.StateUnhealthy || rt.LastErrorCode != monitor.CodeProbeFailed {
		t.Errorf("runtime = %+v", rt)
	}
	if d := field(e.healthEvents(g)[1], "detail"); d == "" {
		t.Errorf("unhealthy event without detail")
	} else {
		t.Logf("unhealthy detail: %s", d)
	}
	// The game server never recovers by itself; point the probe at a path
	// that answers 200 to see the way back: healthy again, state running.
	if _, err := e.st.Transition(context.Background(), g, func(store.Runtime) bool { return true },
		func(r *store.Runtime) { r.HealthPath = "/info" }, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "healthy again", func() bool {
		ev := e.eventsOf(g)
		return len(ev) == 3 && ev[2] == "healthy"
	})
	if rt := e.runtime(g); rt.State != store.StateRunning || rt.LastErrorCode != "" {
		t.Errorf("runtime after recovery = %+v", rt)
	}
}

func TestInspectReportsAnExitedContainer(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage,
		"config_json", gameConfig(t, map[string]string{"GAME_EXIT_AFTER": "2s", "GAME_EXIT_CODE": "7"}))); err != nil {
		t.Fatal(err)
	}
	e.runLoops()
	eventually(t, 30*time.Second, "exited event", func() bool {
		ev := e.eventsOf(g)
		return len(ev) > 0 && ev[len(ev)-1] == "exited"
	})
	rt := e.runtime(g)
	if rt.State != store.StateFailed || rt.LastErrorCode != monitor.CodeContainerExited {
		t.Errorf("runtime = %+v", rt)
	}
	evs := e.healthEvents(g)
	t.Logf("exited detail: %s", field(evs[len(evs)-1], "detail"))
	time.Sleep(time.Second)
	if n := len(e.eventsOf(g)); n != len(evs) {
		t.Errorf("more events after exited: %v", e.eventsOf(g))
	}
}

func TestReconcileReportsAMissingContainer(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	rt := e.runtime(g)
	if _, err := e.engine.Remove(context.Background(), rt.ContainerID); err != nil {
		t.Fatal(err)
	}
	e.runLoops()
	eventually(t, 30*time.Second, "missing event", func() bool {
		for _, ev := range e.eventsOf(g) {
			if ev == "missing" {
				return true
			}
		}
		return false
	})
	if n := len(e.eventsOf(g)); n != 1 {
		t.Errorf("events = %v (want exactly one missing)", e.eventsOf(g))
	}
	if rt := e.runtime(g); rt.State != store.StateFailed || rt.LastErrorCode != monitor.CodeContainerMissing {
		t.Errorf("runtime = %+v", rt)
	}
}

// TestRestartAdoptsRunningGames replaces the manager (new runner and
// monitor over the same database and instance) while a game runs: the game's
// container is kept, not restarted, and the new monitor probes it.
func TestRestartAdoptsRunningGames(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	before := e.runtime(g)
	info, err := e.engine.Inspect(context.Background(), before.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	// The "restarted" manager: the same database, streams and instance.
	e.mon = &monitor.Monitor{Store: e.st, Engine: e.engine, Outbox: e.pub, Redis: e.rdb, Logger: e.run.Logger, Cfg: e.mon.Cfg}
	e.runLoops()
	eventually(t, 20*time.Second, "healthy event after the restart", func() bool { return len(e.eventsOf(g)) == 1 })
	after := e.runtime(g)
	again, err := e.engine.Inspect(context.Background(), after.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if after.ContainerID != before.ContainerID || !again.Running || !again.Created.Equal(info.Created) {
		t.Errorf("container changed across the restart: %+v → %+v", before, after)
	}
	if after.State != store.StateRunning {
		t.Errorf("runtime = %+v", after)
	}
}

// TestReconcileRemovesOrphansOfThisInstanceOnly creates containers by hand:
// one with this instance's labels and no runtime (an orphan), one with
// another instance's labels. Only the first is removed.
func TestReconcileRemovesOrphansOfThisInstanceOnly(t *testing.T) {
	cfg := fastProbe()
	cfg.OrphanGrace = time.Second
	e := newEnv(t, options{probe: cfg})
	ctx := context.Background()
	// Pull the game image through a start of another game.
	if err := e.handleStart(newEntryID(), startValues(gameID(t), shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	mk := func(name, instance string) string {
		labels := harness.OwnerLabels()
		labels[docker.LabelManaged] = "true"
		labels[docker.LabelInstance] = instance
		labels[docker.LabelGameID] = name
		res, err := e.engine.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name,
			Config:     &container.Config{Image: shared.gameImage, Labels: labels},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(e.network)},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = e.engine.Remove(context.Background(), res.ID) })
		return res.ID
	}
	orphan := mk("orphan-"+harness.UniqueSuffix(), e.instance)
	foreign := mk("foreign-"+harness.UniqueSuffix(), "another-instance")
	e.runLoops()
	eventually(t, 20*time.Second, "orphan removed", func() bool {
		_, err := e.engine.Inspect(ctx, orphan)
		return err != nil
	})
	if _, err := e.engine.Inspect(ctx, foreign); err != nil {
		t.Errorf("another instance's container was touched: %v", err)
	}
}

// TestCleanupRemovesExitedContainersOfStoppedGames leaves an exited,
// labelled container for a stopped game (as a stop whose remove failed
// would) and checks cleanup removes it.
func TestCleanupRemovesExitedContainersOfStoppedGames(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	ctx := context.Background()
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	rt := e.runtime(g)
	if err := e.engine.Stop(ctx, rt.ContainerID, time.Second); err != nil {
		t.Fatal(err)
	}
	// Record the game stopped while its exited container stays.
	if _, err := e.st.Transition(ctx, g, func(store.Runtime) bool { return true },
		func(r *store.Runtime) { r.State, r.ContainerID = store.StateStopped, "" }, nil); err != nil {
		t.Fatal(err)
	}
	e.runLoops()
	eventually(t, 20*time.Second, "exited container removed", func() bool { return len(e.containersOfGame(g)) == 0 })
}

// TestReconcileForgetsRemovedContainers: what the loops remember of a
// container (its adoption, its failed probes) goes when the container does,
// so memory does not grow with every game ever run.
func TestReconcileForgetsRemovedContainers(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	ctx := context.Background()
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	if err := e.mon.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.mon.Tracked(); n != 1 {
		t.Fatalf("tracked containers after adopting the game = %d; want 1", n)
	}
	if _, err := e.engine.Remove(ctx, e.runtime(g).ContainerID); err != nil {
		t.Fatal(err)
	}
	if err := e.mon.ReconcileOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.mon.Tracked(); n != 0 {
		t.Errorf("tracked containers after the container was removed = %d; want 0", n)
	}
}
