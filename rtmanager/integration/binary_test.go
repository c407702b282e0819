package integration_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/streams"
)

// rtmProcess is the rtmanager binary started through the harness, as the
// boundary suites start it, on a fresh database, streams and network.
type rtmProcess struct {
	proc    *harness.Process
	api     *harness.RuntimeClient
	rdb     *redis.Client
	streams harness.PipelineStreams
}

func startRTManager(t *testing.T, wait harness.Readiness, overrides map[string]string) *rtmProcess {
	t.Helper()
	svc := startRTManagerService(t, wait, overrides)
	rdb := streams.NewClient(shared.redis.Addr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	return &rtmProcess{proc: svc.Process, api: harness.NewRuntimeClient(svc.URL, ""), rdb: rdb, streams: svc.Streams}
}

// startRTManagerService starts the binary on the package's Redis,
// PostgreSQL (a fresh database) and Docker daemon, with overrides over the
// harness's environment.
func startRTManagerService(t *testing.T, wait harness.Readiness, overrides map[string]string) *harness.Service {
	t.Helper()
	return harness.StartService(context.Background(), t, harness.ServiceSpec{
		Name: "rtmanager",
		Infra: harness.Infra{
			RedisAddr:        shared.redis.Addr,
			PostgresAdminDSN: shared.pg.AdminDSN,
			DockerHost:       harness.DockerHost(),
		},
		Binary: shared.rtmanagerPath,
		Env:    overrides,
		Wait:   wait,
	})
}

// get sends GET path to the manager and returns the answer whatever its
// status, for the endpoints outside the typed client (/readyz, /metrics).
func (r *rtmProcess) get(t *testing.T, path string) harness.Response {
	t.Helper()
	resp, err := r.api.Do(t.Context(), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// isAPIError reports whether err is an answer with status and, when code is
// not empty, the contract error code.
func isAPIError(err error, status int, code string) bool {
	return harness.StatusOf(err) == status && (code == "" || harness.ErrorCodeOf(err) == code)
}

// listed reports whether rts holds gameID's runtime.
func listed(rts []harness.Runtime, gameID string) bool {
	return slices.ContainsFunc(rts, func(rt harness.Runtime) bool { return rt.GameID == gameID })
}

// TestBinaryBoundary is the contract's boundary scenario against the binary alone: ready
// with Docker and the network, an unresolvable image gives one
// runtime.image_pull_failed intent with the frozen payload, and the HTTP API
// shows the failed runtime.
func TestBinaryBoundary(t *testing.T) {
	r := startRTManager(t, harness.WaitReady, nil)
	ctx := context.Background()
	g := gameID(t)
	const ref = "galaxy/integration-missing:0.0.0"
	if _, err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.streams.StartJobs, Values: map[string]any{
		"game_id": g, "image_ref": ref, "requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Result(); err != nil {
		t.Fatal(err)
	}
	intents := r.streams.Intents
	var entry redis.XMessage
	eventually(t, 30*time.Second, "intent", func() bool {
		msgs, err := r.rdb.XRange(ctx, intents, "-", "+").Result()
		if err != nil || len(msgs) == 0 {
			return false
		}
		entry = msgs[0]
		return true
	})
	if field(entry, "notification_type") != "runtime.image_pull_failed" || field(entry, "producer") != "runtime_manager" || field(entry, "audience_kind") != "admin_email" {
		t.Errorf("intent = %v", entry.Values)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(field(entry, "payload_json")), &payload); err != nil {
		t.Fatal(err)
	}
	if payload["game_id"] != g || payload["image_ref"] != ref || payload["error_code"] != "image_pull_failed" || payload["error_message"] == "" || payload["attempted_at_ms"] == nil {
		t.Errorf("payload = %v", payload)
	}
	t.Logf("error_message: %v", payload["error_message"])
	results, err := r.rdb.XRange(ctx, r.streams.JobResults, "-", "+").Result()
	if err != nil || len(results) != 1 || field(results[0], "outcome") != "failed" {
		t.Errorf("results = %v, %v", results, err)
	}

	// The detail as sent, to see every field there, and as the client reads
	// it.
	resp, err := r.api.Do(ctx, http.MethodGet, "/api/v1/internal/runtimes/"+g, nil)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("GET runtime: %d %s %v", resp.Status, resp.Body, err)
	}
	var fields map[string]any
	if err := json.Unmarshal(resp.Body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"game_id", "state", "image_ref", "container_id", "last_error_code", "last_error_message", "updated_at_ms"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("runtime lacks %s: %s", k, resp.Body)
		}
	}
	rt, err := r.api.Runtime(ctx, g)
	if err != nil || rt.GameID != g || rt.State != "failed" || rt.LastErrorCode != "image_pull_failed" {
		t.Errorf("runtime = %+v, %v", rt, err)
	}
	if rts, _, err := r.api.Runtimes(ctx, harness.RuntimeQuery{}); err != nil || !listed(rts, g) {
		t.Errorf("GET runtimes: %+v %v", rts, err)
	}
	if rts, _, err := r.api.Runtimes(ctx, harness.RuntimeQuery{States: []string{"failed", "stopped"}}); err != nil || !listed(rts, g) {
		t.Errorf("GET runtimes?state=failed,stopped: %+v %v", rts, err)
	}
	if rts, _, err := r.api.Runtimes(ctx, harness.RuntimeQuery{States: []string{"running"}}); err != nil || listed(rts, g) {
		t.Errorf("GET runtimes?state=running: %+v %v", rts, err)
	}
	if _, _, err := r.api.Runtimes(ctx, harness.RuntimeQuery{States: []string{"bogus"}}); !isAPIError(err, http.StatusBadRequest, "invalid_request") {
		t.Errorf("GET runtimes?state=bogus: %v", err)
	}
	if m, err := harness.ScrapeMetrics(ctx, r.api.BaseURL); err != nil || m.Value(`rtmanager_jobs_total{error_code="image_pull_failed",kind="start",outcome="failed"}`) != 1 {
		t.Errorf("GET /metrics: %v, no failed start counted", err)
	}
	// Once the job is done, the scrape-time gauges say nothing is under
	// way: no job running, nothing unpublished, the start job acknowledged
	// and nothing dead-lettered — and they are there to say it.
	start := r.streams.StartJobs
	gauges := []string{
		"rtmanager_jobs_running", "rtmanager_outbox_unpublished_entries",
		`stream_group_pending_entries{group="rtmanager",stream="` + start + `"}`,
		`stream_group_lag_entries{group="rtmanager",stream="` + start + `"}`,
		`stream_dead_letter_entries{stream="` + start + `"}`,
	}
	var last harness.Metrics
	eventually(t, 10*time.Second, "the backlog gauges at zero", func() bool {
		m, err := harness.ScrapeMetrics(ctx, r.api.BaseURL)
		if err != nil {
			return false
		}
		last = m
		for _, series := range gauges {
			if v, ok := m[series]; !ok || v != 0 {
				return false
			}
		}
		return true
	})
	if last.Value("rtmanager_backlog_read_errors_total") != 0 || last.Value("stream_backlog_read_errors_total") != 0 {
		t.Errorf("backlog reads failed: %v", last)
	}
	// The one game of this manager's database ended failed, and the daemon
	// it used answered.
	games := map[string]float64{}
	for series, v := range last {
		if strings.HasPrefix(series, "rtmanager_games{") {
			games[series] = v
		}
	}
	wantGames := map[string]float64{
		`rtmanager_games{state="starting"}`: 0, `rtmanager_games{state="running"}`: 0,
		`rtmanager_games{state="unhealthy"}`: 0, `rtmanager_games{state="stopped"}`: 0,
		`rtmanager_games{state="failed"}`: 1,
	}
	if !maps.Equal(games, wantGames) || last.Value("rtmanager_docker_up") != 1 {
		t.Errorf("games by state %v and rtmanager_docker_up %v, want %v and 1", games, last.Value("rtmanager_docker_up"), wantGames)
	}
	if _, err := r.api.Runtime(ctx, "no-such-game"); !isAPIError(err, http.StatusNotFound, "not_found") {
		t.Errorf("GET unknown runtime: %v", err)
	}
}

// TestBinaryNotReadyWithoutTheNetwork: a missing game network makes /readyz
// 503 with the docker_network check named.
func TestBinaryNotReadyWithoutTheNetwork(t *testing.T) {
	r := startRTManager(t, harness.WaitHealthy, map[string]string{"RTMANAGER_DOCKER_NETWORK": "galaxy-no-such-network-" + harness.UniqueSuffix()})
	ready := r.get(t, "/readyz")
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "docker_network") {
		t.Errorf("readyz = %d %s", ready.Status, ready.Body)
	}
	t.Logf("readyz: %s", ready.Body)
}

// TestBinaryRejectsBadConfiguration: exit 2, one message naming the variable.
func TestBinaryRejectsBadConfiguration(t *testing.T) {
	for variable, value := range map[string]string{
		"RTMANAGER_IMAGE_PULL_POLICY":        "sometimes",
		"RTMANAGER_PROBE_INTERVAL":           "often",
		"RTMANAGER_GAME_LEASE_TTL_SECONDS":   "0",
		"RTMANAGER_LEASE_OWNER_TTL":          "100ms",
		"RTMANAGER_LOBBY_INTERNAL_BASE_URL":  "ftp://lobby",
		"RTMANAGER_PROBE_FAILURES_THRESHOLD": "x",
	} {
		t.Run(variable, func(t *testing.T) {
			r := startRTManager(t, harness.WaitNone, map[string]string{variable: value, "RTMANAGER_DOCKER_NETWORK": "unused"})
			code, err := r.proc.Wait(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != 2 || !strings.Contains(r.proc.Logs(), variable) {
				t.Errorf("exit %d, log:\n%s", code, r.proc.Logs())
			}
		})
	}
}
