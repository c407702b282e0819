package docker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"galaxy/harness"
)

// silentDaemon is a Docker daemon that stopped answering: a fault proxy in
// blackhole mode accepts every connection and answers nothing (what it would
// forward to is never dialled).
func silentDaemon(t *testing.T) string {
	t.Helper()
	p := harness.StartFaultProxy(t, "tcp://127.0.0.1:1")
	p.Set(harness.ProxyBlackhole)
	return "tcp://" + p.Addr()
}

// longID is a container ID as the daemon gives it; messages carry its
// first 12 characters.
const longID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func silentEngine(t *testing.T, callTimeout time.Duration) *Engine {
	t.Helper()
	c, err := NewClient(silentDaemon(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Engine{Client: c, Network: "galaxy-games", Instance: "test", CallTimeout: callTimeout}
}

// Every call ends at its deadline with an error naming the call, the daemon
// and the deadline's setting; none is a connection failure (which the runner
// would retry).
func TestEveryCallEndsAtItsDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := silentEngine(t, timeout)
	ctx := context.Background()
	calls := map[string]func() error{
		"ping docker":                  func() error { return e.Ping(ctx) },
		"inspect network galaxy-games": func() error { return e.CheckNetwork(ctx) },
		"inspect image galaxy/game:1":  func() error { _, err := e.ImagePresent(ctx, "galaxy/game:1"); return err },
		"create container galaxy-game-g1 from galaxy/game:1": func() error {
			_, err := e.Create(ctx, Spec{GameID: "g1", Image: "galaxy/game:1", StateDir: "/tmp/g1"})
			return err
		},
		"start container 0123456789ab":     func() error { return e.Start(ctx, longID) },
		"remove container 0123456789ab":    func() error { _, err := e.Remove(ctx, longID); return err },
		"inspect container 0123456789ab":   func() error { _, err := e.Inspect(ctx, longID); return err },
		"list containers of instance test": func() error { _, err := e.Owned(ctx); return err },
		"inspect container galaxy-game-g1": func() error { _, err := e.Inspect(ctx, ContainerName("g1")); return err },
	}
	for op, run := range calls {
		began := time.Now()
		err := run()
		took := time.Since(began)
		var u *UnansweredError
		switch {
		case !errors.As(err, &u):
			t.Errorf("%s: %v, want an UnansweredError", op, err)
		case !strings.HasPrefix(err.Error(), op+": the Docker daemon at tcp://127.0.0.1:") ||
			!strings.HasSuffix(err.Error(), "did not answer within 300ms (RTMANAGER_DOCKER_CALL_TIMEOUT)"):
			t.Errorf("%s: message %q", op, err)
		case !errors.Is(err, context.DeadlineExceeded) || client.IsErrConnectionFailed(err) || Class(err) != "deadline_exceeded":
			t.Errorf("%s: %v classed %s", op, err, Class(err))
		}
		if took < timeout || took > timeout+time.Second {
			t.Errorf("%s: ended after %s, want about %s", op, took, timeout)
		}
	}
}

// The stop's deadline is the container's stop timeout plus a call's.
func TestStopDeadlineIsTheStopTimeoutPlusACall(t *testing.T) {
	e := silentEngine(t, 300*time.Millisecond)
	began := time.Now()
	err := e.Stop(context.Background(), longID, time.Second)
	took := time.Since(began)
	if !IsUnanswered(err) || !strings.Contains(err.Error(), "did not answer within 1.3s (RTMANAGER_CONTAINER_STOP_TIMEOUT + RTMANAGER_DOCKER_CALL_TIMEOUT)") {
		t.Errorf("stop: %v", err)
	}
	if took < 1300*time.Millisecond || took > 2300*time.Millisecond {
		t.Errorf("stop ended after %s, want about 1.3s", took)
	}
}

// A caller's deadline shorter than the call's (the readiness check's) ends
// the wait and is the one reported, also while another call holds the
// client's API-version negotiation, on which the client waits without
// looking at its context.
func TestCallerDeadlineEndsTheWaitEvenBehindTheNegotiation(t *testing.T) {
	e := silentEngine(t, 5*time.Second)
	go func() { _ = e.Ping(context.Background()) }() // holds the negotiation for 5s
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := e.Ping(ctx)
	took := time.Since(began)
	if !IsUnanswered(err) || !strings.HasSuffix(err.Error(), "did not answer within 500ms") {
		t.Errorf("ping: %v", err)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("ping with a 500ms deadline ended after %s", took)
	}
}

// The pull keeps its own timeout, not the call's.
func TestPullKeepsItsOwnTimeout(t *testing.T) {
	e := silentEngine(t, 200*time.Millisecond)
	began := time.Now()
	err := e.Pull(context.Background(), "galaxy/game:1", time.Second)
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "no answer within 1s (RTMANAGER_IMAGE_PULL_TIMEOUT)") {
		t.Errorf("pull: %v", err)
	}
	if took < time.Second {
		t.Errorf("pull ended after %s, before its own timeout", took)
	}
}

// A caller that gives up (shutdown) is not reported as a silent daemon.
func TestCancelledCallIsNotUnanswered(t *testing.T) {
	e := silentEngine(t, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := e.Ping(ctx)
	if err == nil || IsUnanswered(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("ping cancelled: %v", err)
	}
}
