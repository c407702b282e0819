package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// manager is this process's rtmanager and what it talks to.
type manager struct {
	proc                                                                *harness.Process
	url                                                                 string
	api                                                                 *harness.RuntimeClient
	rdb                                                                 *redis.Client
	instance                                                            string
	startStream, stopStream, resultsStream, healthStream, intentsStream string
}

// Name and Processes make the manager a shared resource of the process.
func (m *manager) Name() string                  { return "runtime manager" }
func (m *manager) Processes() []*harness.Process { return []*harness.Process{m.proc} }

func startManager(ctx context.Context, tb harness.TB) *manager {
	suffix := harness.UniqueSuffix()
	dsn, err := infra.Postgres().CreateDatabase(ctx, "rtmanager_"+suffix)
	if err != nil {
		tb.Fatalf("rtmanager database: %v", err)
	}
	m := &manager{
		instance:      "acceptance-" + suffix,
		startStream:   "runtime:start_jobs:" + suffix,
		stopStream:    "runtime:stop_jobs:" + suffix,
		resultsStream: "runtime:job_results:" + suffix,
		healthStream:  "runtime:health_events:" + suffix,
		intentsStream: "notification:intents:" + suffix,
	}
	addr := harness.FreeTCPAddress(tb)
	m.url = "http://" + addr
	m.api = &harness.RuntimeClient{BaseURL: m.url}
	env := map[string]string{
		"RTMANAGER_POSTGRES_DSN":                dsn,
		"RTMANAGER_REDIS_ADDR":                  infra.RedisAddr,
		"RTMANAGER_INTERNAL_HTTP_ADDR":          addr,
		"RTMANAGER_LOG_LEVEL":                   "info",
		"RTMANAGER_SHUTDOWN_TIMEOUT":            "5s",
		"RTMANAGER_STREAM_CLAIM_IDLE":           "2s",
		"RTMANAGER_STREAM_CONSUMER":             "rtmanager-" + suffix,
		"RTMANAGER_STREAM_BLOCK_TIMEOUT":        "200ms",
		"RTMANAGER_LOBBY_INTERNAL_BASE_URL":     "http://127.0.0.1:1",
		"RTMANAGER_LOBBY_INTERNAL_TIMEOUT":      "200ms",
		"RTMANAGER_DOCKER_HOST":                 infra.DockerHost,
		"RTMANAGER_DOCKER_NETWORK":              harness.EnsureDockerNetwork(ctx, tb),
		"RTMANAGER_GAME_STATE_ROOT":             tb.TempDir(),
		"RTMANAGER_INSTANCE_ID":                 m.instance,
		"RTMANAGER_REDIS_START_JOBS_STREAM":     m.startStream,
		"RTMANAGER_REDIS_STOP_JOBS_STREAM":      m.stopStream,
		"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    m.resultsStream,
		"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  m.healthStream,
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": m.intentsStream,
		"RTMANAGER_RECONCILE_INTERVAL":          "1s",
		"RTMANAGER_CLEANUP_INTERVAL":            "1s",
		"RTMANAGER_INSPECT_INTERVAL":            "500ms",
		"RTMANAGER_PROBE_INTERVAL":              "500ms",
		"RTMANAGER_PROBE_TIMEOUT":               "1s",
		"RTMANAGER_PROBE_FAILURES_THRESHOLD":    "3",
		// Short, so a job whose manager was killed holding the lease is
		// redelivered and runs within seconds.
		"RTMANAGER_GAME_LEASE_TTL_SECONDS": "5",
		"RTMANAGER_IMAGE_PULL_POLICY":      "if_missing",
		"RTMANAGER_CONTAINER_STOP_TIMEOUT": "5s",
		"OTEL_TRACES_EXPORTER":             "none",
		"OTEL_METRICS_EXPORTER":            "none",
	}
	m.proc = harness.StartProcess(tb, "rtmanager", infra.Binary(tb, "rtmanager"), env)
	harness.WaitForHTTPStatus(tb, m.proc, m.url+"/readyz", http.StatusOK)
	m.rdb = redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true})
	tb.Cleanup(func() { _ = m.rdb.Close() })
	return m
}

var gameSeq int

// uniqueGameID names a game after the spec and the process, so no two specs
// or runs share one.
func uniqueGameID() string {
	gameSeq++
	return fmt.Sprintf("rt-%s-%d", harness.UniqueSuffix(), gameSeq)
}

// gameConfig is config_json for the game image: the harness's owner labels,
// so a killed run's game containers are swept, plus env.
func gameConfig(env map[string]string) string {
	cfg := map[string]any{"labels": harness.OwnerLabels()}
	if env != nil {
		cfg["env"] = env
	}
	b, err := json.Marshal(cfg)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

func (m *manager) publish(ctx context.Context, stream string, fields map[string]string) string {
	values := map[string]any{"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10)}
	for k, v := range fields {
		values[k] = v
	}
	id, err := m.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
	Expect(err).NotTo(HaveOccurred())
	return id
}

func (m *manager) startGame(ctx context.Context, gameID string, env map[string]string) string {
	return m.publish(ctx, m.startStream, map[string]string{
		"game_id": gameID, "image_ref": infra.GameImage, "config_json": gameConfig(env),
	})
}

func (m *manager) stopGame(ctx context.Context, gameID string) string {
	return m.publish(ctx, m.stopStream, map[string]string{"game_id": gameID, "reason": "acceptance"})
}

// entriesForGame returns the fields of every entry of stream about gameID.
func (m *manager) entriesForGame(ctx context.Context, stream, gameID string) []map[string]string {
	msgs, err := m.rdb.XRange(ctx, stream, "-", "+").Result()
	Expect(err).NotTo(HaveOccurred())
	var out []map[string]string
	for _, msg := range msgs {
		if msg.Values["game_id"] != gameID {
			continue
		}
		fields := map[string]string{"entry_id": msg.ID}
		for k, v := range msg.Values {
			fields[k], _ = v.(string)
		}
		out = append(out, fields)
	}
	return out
}

func (m *manager) results(ctx context.Context, gameID string) []map[string]string {
	return m.entriesForGame(ctx, m.resultsStream, gameID)
}

func (m *manager) events(ctx context.Context, gameID string) []string {
	var out []string
	for _, e := range m.entriesForGame(ctx, m.healthStream, gameID) {
		out = append(out, e["event"])
	}
	return out
}

// runtime is the manager's record of gameID (GET
// /api/v1/internal/runtimes/{game_id}); the spec fails without one.
func (m *manager) runtime(ctx context.Context, gameID string) harness.Runtime {
	GinkgoHelper()
	rt, err := m.api.Runtime(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(rt.GameID).To(Equal(gameID))
	return rt
}

// DumpStreams renders the manager's streams for a failed spec's report.
func (m *manager) DumpStreams(ctx context.Context) string {
	var b strings.Builder
	for _, name := range []string{m.startStream, m.stopStream, m.resultsStream, m.healthStream, m.intentsStream} {
		for _, n := range []string{name, name + ":dead"} {
			msgs, err := m.rdb.XRange(ctx, n, "-", "+").Result()
			if err != nil || len(msgs) == 0 {
				continue
			}
			fmt.Fprintf(&b, "%s (%d):\n", n, len(msgs))
			for _, msg := range msgs {
				fmt.Fprintf(&b, "  %s %v\n", msg.ID, msg.Values)
			}
		}
	}
	return b.String()
}
