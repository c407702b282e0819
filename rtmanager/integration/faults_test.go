package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/streams"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/store"
)

// faultManager is one rtmanager binary of a fault test, with what the test
// reads behind it: the streams through an unfaulted Redis client, and the
// runtime rows through the process's own database.
type faultManager struct {
	svc *harness.Service
	api *harness.RuntimeClient
	rdb *redis.Client
	st  *store.Store
}

// startFaultManager starts the binary with env over the test defaults.
func startFaultManager(t *testing.T, env map[string]string) *faultManager {
	t.Helper()
	return newFaultManager(t, startRTManagerService(t, harness.WaitReady, env))
}

// replica starts another process of m's deployment (same database, streams,
// instance ID, network and state root) with env over m's environment.
func (m *faultManager) replica(t *testing.T, env map[string]string) *faultManager {
	t.Helper()
	return newFaultManager(t, m.svc.Replica(context.Background(), t, env))
}

func newFaultManager(t *testing.T, svc *harness.Service) *faultManager {
	t.Helper()
	rdb := streams.NewClient(shared.redis.Addr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	// The process has applied its migrations before it answered ready.
	pool, err := pgxpool.New(context.Background(), svc.DSN)
	if err != nil {
		t.Fatalf("open the manager's database: %v", err)
	}
	t.Cleanup(pool.Close)
	// Game containers outlive the processes; the test removes its own.
	t.Cleanup(func() { removeInstanceContainers(t, svc.Var("INSTANCE_ID")) })
	return &faultManager{svc: svc, api: harness.NewRuntimeClient(svc.URL, ""), rdb: rdb, st: store.New(pool)}
}

func removeInstanceContainers(t *testing.T, instance string) {
	c, err := harness.DockerClient()
	if err != nil {
		t.Logf("clean-up: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", docker.LabelInstance+"="+instance),
	})
	if err != nil {
		t.Logf("clean-up: %v", err)
		return
	}
	for _, it := range res.Items {
		if _, err := c.ContainerRemove(ctx, it.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Logf("clean-up: %v", err)
		}
	}
}

// publishStart adds a start job for gameID with the game image and returns
// its job ID.
func (m *faultManager) publishStart(t *testing.T, gameID string) string {
	t.Helper()
	jobID := gameID + "-start-" + strconv.FormatInt(seq.Add(1), 10)
	v := startValues(gameID, shared.gameImage, "config_json", gameConfig(t, nil), "job_id", jobID)
	if _, err := streams.Publish(context.Background(), m.rdb, m.svc.Streams.StartJobs, v); err != nil {
		t.Fatal(err)
	}
	return jobID
}

func (m *faultManager) publishStop(t *testing.T, gameID string) string {
	t.Helper()
	jobID := gameID + "-stop-" + strconv.FormatInt(seq.Add(1), 10)
	v := map[string]string{
		"game_id": gameID, "job_id": jobID, "reason": "admin_request",
		"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	if _, err := streams.Publish(context.Background(), m.rdb, m.svc.Streams.StopJobs, v); err != nil {
		t.Fatal(err)
	}
	return jobID
}

func (m *faultManager) stream(t *testing.T, name string) []redis.XMessage {
	t.Helper()
	msgs, err := m.rdb.XRange(context.Background(), name, "-", "+").Result()
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return msgs
}

// resultsOf returns the job results of one job.
func (m *faultManager) resultsOf(t *testing.T, jobID string) []redis.XMessage {
	t.Helper()
	var out []redis.XMessage
	for _, e := range m.stream(t, m.svc.Streams.JobResults) {
		if field(e, "job_id") == jobID {
			out = append(out, e)
		}
	}
	return out
}

// intentsOf returns the admin intents about one game.
func (m *faultManager) intentsOf(t *testing.T, gameID string) []redis.XMessage {
	t.Helper()
	var out []redis.XMessage
	for _, e := range m.stream(t, m.svc.Streams.Intents) {
		var p struct {
			GameID string `json:"game_id"`
		}
		if err := json.Unmarshal([]byte(field(e, "payload_json")), &p); err != nil {
			t.Fatalf("intent %s: %v", e.ID, err)
		}
		if p.GameID == gameID {
			out = append(out, e)
		}
	}
	return out
}

func (m *faultManager) row(t *testing.T, gameID string) store.Runtime {
	t.Helper()
	rt, err := m.st.Runtime(context.Background(), gameID)
	if err != nil {
		t.Fatalf("runtime row of %s: %v", gameID, err)
	}
	return rt
}

// inFlight is the process's in-flight answer; ok is false when it gave none.
func (m *faultManager) inFlight(t *testing.T) (harness.RTManagerInFlight, bool) {
	t.Helper()
	var f harness.RTManagerInFlight
	resp, err := m.api.Do(context.Background(), http.MethodGet, harness.RTManagerInFlightPath, nil)
	if err != nil || resp.Status != http.StatusOK {
		return f, false
	}
	return f, json.Unmarshal(resp.Body, &f) == nil
}

// idle waits until the process has no job running and nothing unpublished
// in two observations in a row.
func (m *faultManager) idle(t *testing.T, timeout time.Duration, what string) {
	t.Helper()
	zero := 0
	eventually(t, timeout, what, func() bool {
		f, ok := m.inFlight(t)
		if ok && f.JobsRunning == 0 && f.Unpublished == 0 {
			zero++
		} else {
			zero = 0
		}
		return zero >= 2
	})
}

// pending counts the group's pending entries (handed out, not
// acknowledged).
func (m *faultManager) pending(t *testing.T, stream string) int64 {
	t.Helper()
	p, err := m.rdb.XPending(context.Background(), stream, "rtmanager").Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatalf("pending of %s: %v", stream, err)
	}
	return p.Count
}

// duration reads a duration variable of the process.
func (m *faultManager) duration(t *testing.T, suffix string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(m.svc.Var(suffix))
	if err != nil {
		t.Fatalf("%s: %v", suffix, err)
	}
	return d
}

func (m *faultManager) integer(t *testing.T, suffix string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(m.svc.Var(suffix), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", suffix, err)
	}
	return n
}
