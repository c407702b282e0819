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

// rtmProcess is the rtmanager binary started through the harness, as the
// boundary suites start it, on a fresh database, streams and network.
type rtmProcess struct {
	proc    *harness.Process
	baseURL string
	rdb     *redis.Client
	streams harness.PipelineStreams
}

func startRTManager(t *testing.T, wait harness.Readiness, overrides map[string]string) *rtmProcess {
	t.Helper()
	svc := harness.StartService(context.Background(), t, harness.ServiceSpec{
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
	rdb := streams.NewClient(shared.redis.Addr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	return &rtmProcess{proc: svc.Process, baseURL: svc.URL, rdb: rdb, streams: svc.Streams}
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
	r := startRTManager(t, harness.WaitHealthy, map[string]string{"RTMANAGER_DOCKER_NETWORK": "galaxy-no-such-network-" + harness.UniqueSuffix()})
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
