package integration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// A Docker daemon that accepts connections and never answers (a proxy in
// front of its socket, blackholed) must not hold a job, its lease or its
// claim for ever: the start fails within the call deadline with one result
// and one container_start_failed intent saying which call went unanswered,
// /readyz says the daemon is not answering without hanging itself, the
// loops' passes end with errors instead of stalling and report nothing
// about the games they could not look at, and once the daemon answers again
// the manager is ready and starts the same game.
func TestBinaryDaemonThatStopsAnswering(t *testing.T) {
	const (
		callTimeout = 2 * time.Second
		// Docker calls of a start of a game with no active record, up to and
		// including the one that fails when the daemon answers nothing: the
		// image inspect of the if_missing policy.
		callsBeforeFailure = 1
		// What a loaded two-core machine adds: reading the entry (block
		// 200ms), recording the outcome, publishing it.
		margin       = 10 * time.Second
		inspectEvery = time.Second
		// The reconcile and cleanup loops' interval.
		listEvery   = 2 * time.Second
		stopTimeout = time.Second
	)
	proxy := harness.StartFaultProxy(t, harness.DockerHost())
	r := startRTManager(t, harness.WaitReady, map[string]string{
		"RTMANAGER_DOCKER_HOST":            "tcp://" + proxy.Addr(),
		"RTMANAGER_DOCKER_CALL_TIMEOUT":    callTimeout.String(),
		"RTMANAGER_INSPECT_INTERVAL":       inspectEvery.String(),
		"RTMANAGER_RECONCILE_INTERVAL":     listEvery.String(),
		"RTMANAGER_CLEANUP_INTERVAL":       listEvery.String(),
		"RTMANAGER_CONTAINER_STOP_TIMEOUT": stopTimeout.String(),
	})
	ctx := context.Background()

	// A game running before the daemon goes silent, for the loops to look at.
	running := gameID(t)
	r.pushStart(t, running, "before-"+running)
	first := r.waitResults(t, running, 1, 60*time.Second)
	if len(first) != 1 || field(first[0], "outcome") != "succeeded" {
		t.Fatalf("start before the fault: %v", first)
	}

	proxy.Set(harness.ProxyBlackhole)
	silent := time.Now()
	loopErrorsAtFault := r.loopErrors(t)

	// The start.
	g := gameID(t)
	r.pushStart(t, g, "hung-"+g)
	bound := callTimeout*callsBeforeFailure + margin
	results := r.waitResults(t, g, 1, bound)
	if len(results) == 0 {
		t.Errorf("no job result within %s (call timeout %s × %d calls + %s) of the daemon going silent", bound, callTimeout, callsBeforeFailure, margin)
	} else {
		t.Logf("start failed %s after the daemon went silent: %s", time.Since(silent).Round(10*time.Millisecond), field(results[0], "error_message"))
		res := results[0]
		msg := field(res, "error_message")
		if len(results) != 1 || field(res, "outcome") != "failed" || field(res, "error_code") != "container_start_failed" {
			t.Errorf("results = %v", results)
		}
		if !strings.Contains(msg, "inspect image") || !strings.Contains(msg, "did not answer within "+callTimeout.String()) ||
			!strings.Contains(msg, "RTMANAGER_DOCKER_CALL_TIMEOUT") {
			t.Errorf("error_message %q does not say which call the daemon left unanswered and within what", msg)
		}
		intents := r.intentsOf(t, g)
		if len(intents) != 1 || field(intents[0], "notification_type") != "runtime.container_start_failed" {
			t.Errorf("intents = %v", intents)
		} else {
			var p map[string]any
			if err := json.Unmarshal([]byte(field(intents[0], "payload_json")), &p); err != nil {
				t.Fatal(err)
			}
			if p["error_code"] != "container_start_failed" || p["error_message"] != msg || p["game_id"] != g {
				t.Errorf("intent payload = %v", p)
			}
		}
		if rt, err := r.api.Runtime(ctx, g); err != nil || rt.State != "failed" || rt.LastErrorCode != "container_start_failed" {
			t.Errorf("runtime = %+v, %v", rt, err)
		}
	}

	// A stop: at most the inspect by name and the stop (its grace plus a
	// call) go unanswered; the job ends container_stop_failed.
	stopAt := time.Now()
	if err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.streams.StopJobs, Values: map[string]any{
		"game_id": running, "job_id": "stop-" + running, "requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	stopBound := stopTimeout + 2*callTimeout + margin
	stops := r.waitResults(t, running, 2, stopBound)
	if len(stops) != 2 {
		t.Errorf("no stop result within %s (stop timeout %s + 2 × call timeout %s + %s)", stopBound, stopTimeout, callTimeout, margin)
	} else {
		st := stops[1]
		t.Logf("stop failed %s after it was pushed: %s", time.Since(stopAt).Round(10*time.Millisecond), field(st, "error_message"))
		if field(st, "job_kind") != "stop" || field(st, "outcome") != "failed" || field(st, "error_code") != "container_stop_failed" ||
			!strings.Contains(field(st, "error_message"), "the Docker daemon at tcp://"+proxy.Addr()+" did not answer within") {
			t.Errorf("stop result = %v", st.Values)
		}
	}

	// Readiness answers, 503, within its own short deadline.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	began := time.Now()
	ready, err := r.api.Do(rctx, http.MethodGet, "/readyz", nil)
	cancel()
	took := time.Since(began)
	switch {
	case err != nil:
		t.Errorf("GET /readyz with the daemon silent: %v after %s", err, took)
	case ready.Status != http.StatusServiceUnavailable || !readyCheckSays(ready.Body, "docker", "did not answer"):
		t.Errorf("GET /readyz with the daemon silent: %d %s", ready.Status, ready.Body)
	default:
		t.Logf("readyz with the daemon silent, in %s: %s", took.Round(10*time.Millisecond), ready.Body)
	}

	// The loops: each pass ends (an error counted), none hangs on the daemon.
	// A pass that began just before the fault waits out one call, the next
	// begins within an interval and waits out another.
	loopBound := max(inspectEvery, listEvery) + 2*callTimeout + margin
	var loopErrs map[string]int
	if !waitFor(loopBound, func() bool {
		loopErrs = r.loopErrors(t)
		return loopErrs["inspect"] > loopErrorsAtFault["inspect"] && loopErrs["reconcile"] > loopErrorsAtFault["reconcile"] &&
			loopErrs["cleanup"] > loopErrorsAtFault["cleanup"]
	}) {
		t.Errorf("loop passes failed since the fault: %v (before: %v), want inspect, reconcile and cleanup each within %s", loopErrs, loopErrorsAtFault, loopBound)
	} else {
		t.Logf("failed loop passes %s after the daemon went silent: %v", time.Since(silent).Round(10*time.Millisecond), loopErrs)
	}
	// A pass that could not look proves nothing about the game.
	for _, ev := range r.healthEventsOf(t, running) {
		if e := field(ev, "event"); e != "healthy" {
			t.Errorf("health event %q (%s) while the daemon was silent", e, field(ev, "detail"))
		}
	}

	// The daemon answers again: ready, and the same game starts.
	proxy.Set(harness.ProxyPass)
	back := time.Now()
	harness.WaitForHTTPStatus(t, r.proc, r.api.BaseURL+"/readyz", http.StatusOK)
	t.Logf("ready %s after the daemon answered again", time.Since(back).Round(10*time.Millisecond))
	r.pushStart(t, g, "again-"+g)
	again := r.waitResults(t, g, len(results)+1, 60*time.Second)
	if len(again) != len(results)+1 || field(again[len(again)-1], "outcome") != "succeeded" {
		t.Fatalf("start after the daemon answered again: %v", again)
	}
	if rt, err := r.api.Runtime(ctx, g); err != nil || rt.State != "running" || rt.ContainerID == "" {
		t.Errorf("runtime after the restart = %+v, %v", rt, err)
	}

	// The inspect loop looks again: a container removed behind the
	// manager's back is reported missing.
	dc, err := harness.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	id := field(first[0], "container_id")
	if _, err := dc.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool {
		for _, ev := range r.healthEventsOf(t, running) {
			if field(ev, "event") == "missing" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no missing event for %s after the daemon answered again: %v", running, r.healthEventsOf(t, running))
	}
}

func (r *rtmProcess) pushStart(t *testing.T, gameID, jobID string) {
	t.Helper()
	values := map[string]any{
		"game_id": gameID, "image_ref": shared.gameImage, "job_id": jobID,
		"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10), "config_json": gameConfig(t, nil),
	}
	if err := r.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: r.streams.StartJobs, Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
}

func (r *rtmProcess) entriesOf(t *testing.T, stream, key, value string) []redis.XMessage {
	t.Helper()
	msgs, err := r.rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	var out []redis.XMessage
	for _, m := range msgs {
		if field(m, key) == value {
			out = append(out, m)
		}
	}
	return out
}

func (r *rtmProcess) healthEventsOf(t *testing.T, gameID string) []redis.XMessage {
	return r.entriesOf(t, r.streams.HealthEvents, "game_id", gameID)
}

func (r *rtmProcess) intentsOf(t *testing.T, gameID string) []redis.XMessage {
	t.Helper()
	var out []redis.XMessage
	for _, m := range r.entriesOf(t, r.streams.Intents, "producer", "runtime_manager") {
		var p struct {
			GameID string `json:"game_id"`
		}
		if json.Unmarshal([]byte(field(m, "payload_json")), &p) == nil && p.GameID == gameID {
			out = append(out, m)
		}
	}
	return out
}

// waitResults waits up to timeout for n job results of the game and
// returns those there are then.
func (r *rtmProcess) waitResults(t *testing.T, gameID string, n int, timeout time.Duration) []redis.XMessage {
	t.Helper()
	var got []redis.XMessage
	waitFor(timeout, func() bool {
		got = r.entriesOf(t, r.streams.JobResults, "game_id", gameID)
		return len(got) >= n
	})
	return got
}

// loopErrors reads rtmanager_loop_errors_total by loop from /metrics.
func (r *rtmProcess) loopErrors(t *testing.T) map[string]int {
	t.Helper()
	m, err := harness.ScrapeMetrics(t.Context(), r.api.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for series, v := range m.Matching("rtmanager_loop_errors_total", nil) {
		out[harness.Label(series, "loop")] = int(v)
	}
	return out
}

// readyCheckSays reports whether a /readyz body has a failed check of that
// name whose error contains text.
func readyCheckSays(body []byte, check, text string) bool {
	var got struct {
		Checks []struct{ Check, Error string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return false
	}
	for _, c := range got.Checks {
		if c.Check == check && strings.Contains(c.Error, text) {
			return true
		}
	}
	return false
}

// waitFor polls cond every 100ms until it holds (true) or timeout passes
// (false); unlike eventually it leaves failing to the caller, so one run
// reports every broken expectation.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// TestBinaryRejectsABadDockerCallTimeout: exit 2, the variable named.
func TestBinaryRejectsABadDockerCallTimeout(t *testing.T) {
	for _, value := range []string{"soon", "100ms"} {
		t.Run(value, func(t *testing.T) {
			r := startRTManager(t, harness.WaitNone, map[string]string{"RTMANAGER_DOCKER_CALL_TIMEOUT": value, "RTMANAGER_DOCKER_NETWORK": "unused"})
			code, err := r.proc.Wait(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != 2 || !strings.Contains(r.proc.Logs(), "RTMANAGER_DOCKER_CALL_TIMEOUT") {
				t.Errorf("exit %d, log:\n%s", code, r.proc.Logs())
			}
		})
	}
}
