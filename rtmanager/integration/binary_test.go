package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/streams"
)

// rtmProcess starts the rtmanager binary the way the boundary suite does
// (same variables), on a fresh database, streams and network.
type rtmProcess struct {
	proc    *harness.Process
	baseURL string
	rdb     *redis.Client
	env     map[string]string
}

func startRTManager(t *testing.T, overrides map[string]string) *rtmProcess {
	t.Helper()
	ctx := context.Background()
	dsn, err := shared.pg.CreateDatabase(ctx, "rtmanager_bin")
	if err != nil {
		t.Fatal(err)
	}
	addr := harness.FreeTCPAddress(t)
	suffix := harness.UniqueSuffix()
	env := map[string]string{
		"RTMANAGER_POSTGRES_DSN":                dsn,
		"RTMANAGER_REDIS_ADDR":                  shared.redis.Addr,
		"RTMANAGER_LOG_LEVEL":                   "info",
		"RTMANAGER_INTERNAL_HTTP_ADDR":          addr,
		"RTMANAGER_LOBBY_INTERNAL_BASE_URL":     "http://127.0.0.1:1",
		"RTMANAGER_LOBBY_INTERNAL_TIMEOUT":      "200ms",
		"RTMANAGER_DOCKER_HOST":                 harness.DockerHost(),
		"RTMANAGER_GAME_STATE_ROOT":             t.TempDir(),
		"RTMANAGER_REDIS_START_JOBS_STREAM":     "runtime:start_jobs:" + suffix,
		"RTMANAGER_REDIS_STOP_JOBS_STREAM":      "runtime:stop_jobs:" + suffix,
		"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    "runtime:job_results:" + suffix,
		"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  "runtime:health_events:" + suffix,
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": "notification:intents:" + suffix,
		"RTMANAGER_STREAM_BLOCK_TIMEOUT":        "200ms",
		"RTMANAGER_RECONCILE_INTERVAL":          "5s",
		"RTMANAGER_CLEANUP_INTERVAL":            "5s",
		"RTMANAGER_INSPECT_INTERVAL":            "5s",
		"RTMANAGER_PROBE_INTERVAL":              "5s",
		"RTMANAGER_PROBE_TIMEOUT":               "1s",
		"RTMANAGER_PROBE_FAILURES_THRESHOLD":    "3",
		"RTMANAGER_GAME_LEASE_TTL_SECONDS":      "30",
		"RTMANAGER_IMAGE_PULL_POLICY":           "if_missing",
		"RTMANAGER_SHUTDOWN_TIMEOUT":            "5s",
		"OTEL_TRACES_EXPORTER":                  "none",
		"OTEL_METRICS_EXPORTER":                 "none",
	}
	if _, ok := overrides["RTMANAGER_DOCKER_NETWORK"]; !ok {
		env["RTMANAGER_DOCKER_NETWORK"] = harness.EnsureDockerNetwork(ctx, t)
	}
	for k, v := range overrides {
		env[k] = v
	}
	p := harness.StartProcess(t, "rtmanager", shared.rtmanagerPath, env)
	rdb := streams.NewClient(shared.redis.Addr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	return &rtmProcess{proc: p, baseURL: "http://" + addr, rdb: rdb, env: env}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBinaryBoundary is the seed's scenario against the binary alone: ready
// with Docker and the network, an unresolvable image gives one
// runtime.image_pull_failed intent with the frozen payload, and the HTTP API
// shows the failed runtime.
func TestBinaryBoundary(t *testing.T) {
	r := startRTManager(t, nil)
	harness.WaitForHTTPStatus(t, r.proc, r.baseURL+"/readyz", http.StatusOK)
	ctx := context.Background()
	g := gameID(t)
	const ref = "galaxy/integration-missing:0.0.0"
	if _, err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.env["RTMANAGER_REDIS_START_JOBS_STREAM"], Values: map[string]any{
		"game_id": g, "image_ref": ref, "requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Result(); err != nil {
		t.Fatal(err)
	}
	intents := r.env["RTMANAGER_NOTIFICATION_INTENTS_STREAM"]
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
	results, err := r.rdb.XRange(ctx, r.env["RTMANAGER_REDIS_JOB_RESULTS_STREAM"], "-", "+").Result()
	if err != nil || len(results) != 1 || field(results[0], "outcome") != "failed" {
		t.Errorf("results = %v, %v", results, err)
	}

	code, body := get(t, r.baseURL+"/api/v1/internal/runtimes/"+g)
	if code != http.StatusOK {
		t.Fatalf("GET runtime: %d %s", code, body)
	}
	var rt map[string]any
	if err := json.Unmarshal([]byte(body), &rt); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"game_id", "state", "image_ref", "container_id", "last_error_code", "last_error_message", "updated_at_ms"} {
		if _, ok := rt[k]; !ok {
			t.Errorf("runtime lacks %s: %s", k, body)
		}
	}
	if rt["state"] != "failed" || rt["last_error_code"] != "image_pull_failed" {
		t.Errorf("runtime = %s", body)
	}
	code, body = get(t, r.baseURL+"/api/v1/internal/runtimes")
	if code != http.StatusOK || !strings.Contains(body, `"game_id":"`+g+`"`) {
		t.Errorf("GET runtimes: %d %s", code, body)
	}
	code, body = get(t, r.baseURL+"/api/v1/internal/runtimes?state=failed,stopped")
	if code != http.StatusOK || !strings.Contains(body, `"game_id":"`+g+`"`) {
		t.Errorf("GET runtimes?state=failed,stopped: %d %s", code, body)
	}
	code, body = get(t, r.baseURL+"/api/v1/internal/runtimes?state=running")
	if code != http.StatusOK || strings.Contains(body, g) {
		t.Errorf("GET runtimes?state=running: %d %s", code, body)
	}
	code, body = get(t, r.baseURL+"/api/v1/internal/runtimes?state=bogus")
	if code != http.StatusBadRequest || !strings.Contains(body, `"code":"invalid_request"`) {
		t.Errorf("GET runtimes?state=bogus: %d %s", code, body)
	}
	code, body = get(t, r.baseURL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `rtmanager_jobs_total{error_code="image_pull_failed",kind="start",outcome="failed"} 1`) {
		t.Errorf("GET /metrics: %d, no failed start counted", code)
	}
	code, body = get(t, r.baseURL+"/api/v1/internal/runtimes/no-such-game")
	if code != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("GET unknown runtime: %d %s", code, body)
	}
}

// TestBinaryNotReadyWithoutTheNetwork: a missing game network makes /readyz
// 503 with the docker_network check named.
func TestBinaryNotReadyWithoutTheNetwork(t *testing.T) {
	r := startRTManager(t, map[string]string{"RTMANAGER_DOCKER_NETWORK": "galaxy-no-such-network-" + harness.UniqueSuffix()})
	harness.WaitForHTTPStatus(t, r.proc, r.baseURL+"/healthz", http.StatusOK)
	code, body := get(t, r.baseURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "docker_network") {
		t.Errorf("readyz = %d %s", code, body)
	}
	t.Logf("readyz: %s", body)
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
			r := startRTManager(t, map[string]string{variable: value, "RTMANAGER_DOCKER_NETWORK": "unused"})
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
