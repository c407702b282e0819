package integration_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"galaxy/harness"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/monitor"
	"galaxy/rtmanager/store"
)

// TestLoopsCountOnlyTheContainersTheyRemoved lets something else remove a
// container between a loop pass's listing and its remove — a replica of the
// same instance running the same pass, or a removal the daemon had not
// finished when the previous pass listed again — every time, through a
// hooked Docker transport. The pass finds the container gone: it must not
// log or count it as removed by itself, so
// rtmanager_containers_removed_total counts each container once however
// many passes saw it.
func TestLoopsCountOnlyTheContainersTheyRemoved(t *testing.T) {
	for _, tc := range []struct {
		reason string
		// leave leaves a container the pass removes, for reason.
		leave func(t *testing.T, e *env) string
		pass  func(m *monitor.Monitor) func(context.Context) error
	}{
		{
			reason: "stopped",
			leave: func(t *testing.T, e *env) string {
				// A stopped game whose exited container stayed, as a stop
				// whose remove failed leaves it.
				g := gameID(t)
				if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
					t.Fatal(err)
				}
				rt := e.runtime(g)
				if err := e.engine.Stop(context.Background(), rt.ContainerID, time.Second); err != nil {
					t.Fatal(err)
				}
				if _, err := e.st.Transition(context.Background(), g, func(store.Runtime) bool { return true },
					func(r *store.Runtime) { r.State, r.ContainerID = store.StateStopped, "" }, nil); err != nil {
					t.Fatal(err)
				}
				return rt.ContainerID
			},
			pass: func(m *monitor.Monitor) func(context.Context) error { return m.CleanupOnce },
		},
		{
			reason: "orphan",
			leave: func(t *testing.T, e *env) string {
				// Pull the game image through a start of another game.
				if err := e.handleStart(newEntryID(), startValues(gameID(t), shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
					t.Fatal(err)
				}
				labels := harness.OwnerLabels()
				labels[docker.LabelManaged] = "true"
				labels[docker.LabelInstance] = e.instance
				labels[docker.LabelGameID] = gameID(t)
				res, err := e.engine.Client.ContainerCreate(context.Background(), client.ContainerCreateOptions{
					Name:       "orphan-" + harness.UniqueSuffix(),
					Config:     &container.Config{Image: shared.gameImage, Labels: labels},
					HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(e.network)},
				})
				if err != nil {
					t.Fatal(err)
				}
				return res.ID
			},
			pass: func(m *monitor.Monitor) func(context.Context) error { return m.ReconcileOnce },
		},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			cfg := fastProbe()
			cfg.OrphanGrace = time.Nanosecond
			e := newEnv(t, options{probe: cfg})
			ctx := context.Background()
			id := tc.leave(t, e)

			// After the pass's listing, the other remover takes the
			// container (e.engine is not hooked).
			var once sync.Once
			hooked := e.hookedEngine(func(r *http.Request, status int) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/json") && status == http.StatusOK {
					once.Do(func() {
						if _, err := e.engine.Remove(ctx, id); err != nil {
							t.Errorf("remove behind the pass's back: %v", err)
						}
					})
				}
			})
			reg := prometheus.NewRegistry()
			m := &monitor.Monitor{
				Store: e.st, Engine: hooked, Outbox: e.pub, Redis: e.rdb, Logger: e.mon.Logger,
				Metrics: monitor.NewMetrics(reg), HTTP: e.mon.HTTP, Cfg: e.mon.Cfg,
			}
			if err := tc.pass(m)(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.engine.Inspect(ctx, id); err == nil {
				t.Fatalf("container %s still exists", id)
			}
			if n := removedTotal(t, reg, tc.reason); n != 0 {
				t.Errorf("rtmanager_containers_removed_total{reason=%q} = %v after a pass that found the container gone, want 0", tc.reason, n)
			}
		})
	}
}

// removedTotal reads rtmanager_containers_removed_total{reason} from reg;
// 0 when the series does not exist.
func removedTotal(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "rtmanager_containers_removed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
