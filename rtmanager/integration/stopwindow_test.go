package integration_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"galaxy/harness"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/store"
)

// afterCall is a Docker transport that runs hook once the daemon has
// answered a request, before the answer reaches the caller: a test can act
// in the window between a job's Docker call and what the job does next,
// every time rather than when the timing happens to fall that way.
type afterCall struct {
	base http.RoundTripper
	hook func(req *http.Request, status int)
}

func (a afterCall) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(req)
	if err == nil {
		a.hook(req, resp.StatusCode)
	}
	return resp, err
}

// hookedEngine is an engine of e's instance and network whose calls go to
// the daemon through afterCall.
func (e *env) hookedEngine(hook func(req *http.Request, status int)) *docker.Engine {
	e.t.Helper()
	host := harness.DockerHost()
	u, err := client.ParseHostURL(host)
	if err != nil {
		e.t.Fatal(err)
	}
	// The socket's path for unix://, host:port for tcp://.
	proto, addr := u.Scheme, u.Host
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, proto, addr)
	}}
	e.t.Cleanup(base.CloseIdleConnections)
	// WithHost first: it configures only a client's own *http.Transport;
	// WithHTTPClient then puts the hooked one in its place.
	dc, err := client.New(client.WithHost(host), client.WithHTTPClient(&http.Client{Transport: afterCall{base: base, hook: hook}}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = dc.Close() })
	return &docker.Engine{Client: dc, Network: e.network, Instance: e.instance}
}

// TestStopIsNotReportedExitedOrMissing runs a loop pass — inspect, or
// reconcile — inside a stop job: right after the daemon stopped the game's
// container, or right after it removed it, before the job records the game
// stopped. The container has exited, or is gone, because the job stopped
// it; the pass must not report it exited or missing, nor record the game
// failed, and the stop ends as a clean one.
func TestStopIsNotReportedExitedOrMissing(t *testing.T) {
	stopped := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/stop")
	}
	removed := func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/containers/")
	}
	for _, tc := range []struct {
		name string
		// at matches the job's Docker call after which the pass runs.
		at func(r *http.Request) bool
		// gone says whether the container no longer exists by then.
		gone bool
		pass func(e *env) func(context.Context) error
	}{
		{"inspect after the container stopped", stopped, false, func(e *env) func(context.Context) error { return e.mon.InspectOnce }},
		{"reconcile after the container stopped", stopped, false, func(e *env) func(context.Context) error { return e.mon.ReconcileOnce }},
		{"inspect after the container was removed", removed, true, func(e *env) func(context.Context) error { return e.mon.InspectOnce }},
		{"reconcile after the container was removed", removed, true, func(e *env) func(context.Context) error { return e.mon.ReconcileOnce }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{probe: fastProbe()})
			ctx := context.Background()
			g := gameID(t)
			if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
				t.Fatal(err)
			}
			running := e.runtime(g)
			if running.State != store.StateRunning || running.ContainerID == "" {
				t.Fatalf("runtime after the start = %+v", running)
			}

			var (
				mu    sync.Mutex
				calls int
				seen  store.Runtime // the row right after the pass, mid-job
			)
			e.run.Engine = e.hookedEngine(func(req *http.Request, status int) {
				if !tc.at(req) || status >= 300 {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				calls++
				// The window is really open: the daemon has done its part.
				info, err := e.engine.Inspect(ctx, running.ContainerID)
				switch {
				case tc.gone && !cerrdefs.IsNotFound(err):
					t.Errorf("container after the job's remove: %+v, %v; want it gone", info, err)
				case !tc.gone && (err != nil || info.Running):
					t.Errorf("container after the job's stop: %+v, %v; want it exited", info, err)
				}
				if err := tc.pass(e)(ctx); err != nil {
					t.Errorf("loop pass: %v", err)
				}
				seen = e.runtime(g)
			})

			stopID := "stop-" + g
			if err := e.handleStop(newEntryID(), map[string]string{"game_id": g, "job_id": stopID, "requested_at_ms": "1"}); err != nil {
				t.Fatalf("stop: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != 1 {
				t.Fatalf("the pass ran %d times inside the stop job; want once", calls)
			}
			if seen.State != store.StateRunning || seen.LastErrorCode != "" || seen.ContainerID != running.ContainerID {
				t.Errorf("runtime while the stop job ran, after the pass: state %q, error %q %q, container %q; want it left running with %s",
					seen.State, seen.LastErrorCode, seen.LastErrorMessage, seen.ContainerID, running.ContainerID)
			}
			for _, m := range e.healthEvents(g) {
				t.Errorf("health event published for a game its stop job stopped: %s %s: %s",
					field(m, "event"), field(m, "container_id"), field(m, "detail"))
			}
			res := e.results(g)
			if len(res) != 2 || field(res[1], "job_id") != stopID || field(res[1], "outcome") != "succeeded" ||
				field(res[1], "container_id") != running.ContainerID {
				t.Errorf("results = %v; want the start's and the stop's succeeded result naming %s", res, running.ContainerID)
			}
			if rt := e.runtime(g); rt.State != store.StateStopped || rt.LastErrorCode != "" || rt.ContainerID != "" || rt.LastJobID != stopID {
				t.Errorf("runtime after the stop = %+v; want stopped by %s, no error", rt, stopID)
			}
			if ids := e.containersOfGame(g); len(ids) != 0 {
				t.Errorf("containers left after the stop: %v", ids)
			}
		})
	}
}
