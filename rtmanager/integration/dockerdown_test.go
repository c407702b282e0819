package integration_test

import (
	"testing"
	"time"

	"galaxy/harness"
	"galaxy/platform/streams"
)

// dockerDownEnv is a manager whose Docker daemon is reached through a fault
// proxy, with short stream timers: a delivery that fails is taken up again
// after STREAM_CLAIM_IDLE, and the entry's budget is STREAM_MAX_DELIVERIES.
func dockerDownEnv(t *testing.T) (*faultManager, *harness.FaultProxy) {
	t.Helper()
	proxy := harness.StartFaultProxy(t, harness.DockerHost())
	m := startFaultManager(t, map[string]string{
		"RTMANAGER_DOCKER_HOST":           "tcp://" + proxy.Addr(),
		"RTMANAGER_STREAM_CLAIM_IDLE":     "1s",
		"RTMANAGER_STREAM_MAX_DELIVERIES": "3",
	})
	return m, proxy
}

// budget is how long every delivery of one entry takes when each fails at
// once: MAX_DELIVERIES times CLAIM_IDLE (each retry waits for the entry to go
// idle), plus a quarter of it per delivery for the reclaim poll, plus margin
// for a loaded machine.
func (m *faultManager) budget(t *testing.T) time.Duration {
	idle := m.duration(t, "STREAM_CLAIM_IDLE")
	n := time.Duration(m.integer(t, "STREAM_MAX_DELIVERIES"))
	return n*idle + n*idle/4 + 30*time.Second
}

// TestStartOfARunningGameWhileDockerIsUnreachableEndsWithOneFailure: a game
// recorded running with a container, then another start job of it while the
// manager cannot reach its Docker daemon for every delivery of the entry.
// The last delivery records the failure: one failed result, one
// container_start_failed intent, nothing dead-lettered.
func TestStartOfARunningGameWhileDockerIsUnreachableEndsWithOneFailure(t *testing.T) {
	m, proxy := dockerDownEnv(t)
	g := gameID(t)
	first := m.publishStart(t, g)
	eventually(t, 60*time.Second, "the first start's result", func() bool { return len(m.resultsOf(t, first)) == 1 })
	if r := m.resultsOf(t, first)[0]; field(r, "outcome") != "succeeded" {
		t.Fatalf("first start: %v", r.Values)
	}
	if rt := m.row(t, g); !rt.Active() || rt.ContainerID == "" {
		t.Fatalf("runtime after the first start: %+v", rt)
	}

	proxy.Set(harness.ProxyRefuse)
	began := time.Now()
	second := m.publishStart(t, g)
	dead := m.svc.Streams.StartJobs + streams.DeadLetterSuffix
	eventually(t, m.budget(t), "the second start ends (a result or a dead letter)", func() bool {
		return len(m.resultsOf(t, second)) > 0 || len(m.stream(t, dead)) > 0
	})
	m.idle(t, m.budget(t), "the manager settles")
	eventually(t, m.budget(t), "no entry pending", func() bool { return m.pending(t, m.svc.Streams.StartJobs) == 0 })
	t.Logf("the second start ended %s after it was published, with Docker unreachable", time.Since(began).Round(time.Millisecond))

	if d := m.stream(t, dead); len(d) != 0 {
		t.Errorf("dead-lettered: %v", d[0].Values)
	}
	results := m.resultsOf(t, second)
	if len(results) != 1 {
		t.Fatalf("second start: %d results, want 1", len(results))
	}
	if r := results[0]; field(r, "outcome") != "failed" || field(r, "error_code") != "container_start_failed" || field(r, "error_message") == "" {
		t.Errorf("second start's result: %v", r.Values)
	}
	var intents []string
	for _, in := range m.intentsOf(t, g) {
		intents = append(intents, field(in, "notification_type"))
	}
	if len(intents) != 1 || intents[0] != "runtime.container_start_failed" {
		t.Errorf("intents about the game: %v, want one runtime.container_start_failed", intents)
	}
}

// TestStopWhileDockerIsUnreachableIsNotReportedDone: a stop job for a game
// with no recorded container (a failed start) while the daemon cannot be
// reached for every delivery. Whether a container of the game exists is
// unknown, so the stop is not reported succeeded: one failed result.
func TestStopWhileDockerIsUnreachableIsNotReportedDone(t *testing.T) {
	m, proxy := dockerDownEnv(t)
	g := gameID(t)
	proxy.Set(harness.ProxyRefuse)
	start := m.publishStart(t, g)
	eventually(t, m.budget(t), "the start's result", func() bool { return len(m.resultsOf(t, start)) > 0 })
	stop := m.publishStop(t, g)
	dead := m.svc.Streams.StopJobs + streams.DeadLetterSuffix
	eventually(t, m.budget(t), "the stop ends (a result or a dead letter)", func() bool {
		return len(m.resultsOf(t, stop)) > 0 || len(m.stream(t, dead)) > 0
	})
	m.idle(t, m.budget(t), "the manager settles")
	if d := m.stream(t, dead); len(d) != 0 {
		t.Errorf("dead-lettered: %v", d[0].Values)
	}
	results := m.resultsOf(t, stop)
	if len(results) != 1 {
		t.Fatalf("stop: %d results, want 1", len(results))
	}
	if r := results[0]; field(r, "outcome") != "failed" || field(r, "error_code") != "container_stop_failed" {
		t.Errorf("stop's result: %v", r.Values)
	}
}
