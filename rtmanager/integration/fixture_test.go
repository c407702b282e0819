package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/platform/database"
	"galaxy/platform/streams"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/migrations"
	"galaxy/rtmanager/monitor"
	"galaxy/rtmanager/outbox"
	"galaxy/rtmanager/runner"
	"galaxy/rtmanager/store"
)

// shared is what every test of the package uses: one Redis, one PostgreSQL
// (a database per test), one registry with the test images.
var shared struct {
	redis         *harness.Redis
	pg            *harness.Postgres
	registry      *harness.Registry
	gameImage     string
	brokenImage   string
	nonExecImage  string
	missingImage  string
	rtmanagerPath string
}

func TestMain(m *testing.M) {
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	tb := harness.NewPackageTB("rtmanager-integration")
	code := func() int {
		defer tb.Close()
		ctx := context.Background()
		harness.RequireDocker(tb)
		shared.redis = harness.StartRedis(ctx, tb)
		shared.pg = harness.StartPostgres(ctx, tb)
		shared.registry = harness.StartRegistry(ctx, tb)
		shared.gameImage = harness.BuildGoImage(ctx, tb, shared.registry, harness.GameServerPackage, "galaxy/gameserver", "test")
		shared.brokenImage = harness.BuildBrokenEntrypointImage(ctx, tb, shared.registry, "galaxy/broken-entrypoint", "test")
		shared.nonExecImage = harness.BuildNonExecutableEntrypointImage(ctx, tb, shared.registry, "galaxy/non-executable", "test")
		shared.missingImage = shared.registry.Ref("galaxy/gameserver", "no-such-tag")
		shared.rtmanagerPath = harness.BuildBinary(tb, "./rtmanager/cmd/rtmanager")
		return m.Run()
	}()
	os.Exit(code)
}

// env is one test's Runtime Manager, assembled in-process from the same
// pieces main wires, on its own database, streams, network, state root and
// instance identity.
type env struct {
	t        *testing.T
	rdb      *redis.Client
	st       *store.Store
	engine   *docker.Engine
	run      *runner.Runner
	mon      *monitor.Monitor
	pub      *outbox.Publisher
	pool     *pgxpool.Pool
	dsn      string
	network  string
	root     string
	instance string

	startStream, stopStream, resultsStream, healthStream, intentsStream string
}

type options struct {
	pullPolicy string
	network    string // "" creates one
	probe      monitor.Config
}

var seq atomic.Int64

func newEnv(t *testing.T, opts options) *env {
	t.Helper()
	ctx := context.Background()
	dsn, err := shared.pg.CreateDatabase(ctx, "rtmanager_"+t.Name())
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("service", "rtmanager")
	pool, err := database.Open(ctx, "rtmanager", dsn, migrations.FS, logger)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(pool.Close)
	rdb := streams.NewClient(shared.redis.Addr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	dc, err := docker.NewClient(harness.DockerHost())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.Close() })

	network := opts.network
	if network == "" {
		network = harness.EnsureDockerNetwork(ctx, t)
	}
	suffix := harness.UniqueSuffix() + "-" + strconv.FormatInt(seq.Add(1), 10)
	e := &env{
		t: t, rdb: rdb, st: store.New(pool), pool: pool, dsn: dsn, network: network, root: t.TempDir(),
		instance:      "test-" + suffix,
		startStream:   "runtime:start_jobs:" + suffix,
		stopStream:    "runtime:stop_jobs:" + suffix,
		resultsStream: "runtime:job_results:" + suffix,
		healthStream:  "runtime:health_events:" + suffix,
		intentsStream: "notification:intents:" + suffix,
	}
	e.engine = &docker.Engine{Client: dc, Network: network, Instance: e.instance}
	// Whatever a test leaves, its containers go: they carry its instance.
	t.Cleanup(func() { e.removeOwned() })
	e.pub = &outbox.Publisher{Store: e.st, Redis: rdb, Logger: logger, Sweep: 200 * time.Millisecond}
	policy := opts.pullPolicy
	if policy == "" {
		policy = docker.PullIfMissing
	}
	reg := prometheus.NewRegistry()
	e.run = &runner.Runner{
		Store: e.st, Engine: e.engine, Outbox: e.pub, Logger: logger, Metrics: runner.NewMetrics(reg),
		Leases: &lease.Manager{Client: rdb, TTL: 30 * time.Second, Poll: 20 * time.Millisecond},
		Cfg: runner.Config{
			StateRoot: e.root, PullPolicy: policy, PullTimeout: 20 * time.Second, StopTimeout: 2 * time.Second,
			LeaseWait: 30 * time.Second, JobResultsStream: e.resultsStream, IntentsStream: e.intentsStream,
			Instance: e.instance, MaxDeliveries: 5,
		},
	}
	mc := opts.probe
	mc.HealthEventsStream = e.healthStream
	if mc.ProbeTimeout == 0 {
		mc.ProbeTimeout = time.Second
	}
	if mc.ProbeThreshold == 0 {
		mc.ProbeThreshold = 3
	}
	if mc.StaleStart == 0 {
		mc.StaleStart = time.Minute
	}
	if mc.OrphanGrace == 0 {
		mc.OrphanGrace = time.Minute
	}
	e.mon = &monitor.Monitor{
		Store: e.st, Engine: e.engine, Outbox: e.pub, Redis: rdb, Logger: logger, Metrics: monitor.NewMetrics(reg),
		HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, Cfg: mc,
	}
	return e
}

// testWriter sends the service's log lines to the test log, shown on failure.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) removeOwned() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owned, err := e.engine.Owned(ctx)
	if err != nil {
		e.t.Logf("clean-up: %v", err)
		return
	}
	for _, c := range owned {
		if _, err := e.engine.Remove(ctx, c.ID); err != nil {
			e.t.Logf("clean-up: %v", err)
		}
	}
}

// startValues is a start job entry; extra fields override.
func startValues(gameID, image string, extra ...string) map[string]string {
	v := map[string]string{
		"game_id":         gameID,
		"image_ref":       image,
		"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v[extra[i]] = extra[i+1]
	}
	return v
}

// gameConfig is a config_json for the game image that also carries the
// harness's owner labels, so a killed run's game containers are swept too.
func gameConfig(t *testing.T, envVars map[string]string) string {
	t.Helper()
	cfg := map[string]any{"labels": harness.OwnerLabels(), "memory_mb": 64, "cpus": 0.5}
	if envVars != nil {
		cfg["env"] = envVars
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var entrySeq atomic.Int64

// handleStart runs one delivery of a start job entry with the given ID.
func (e *env) handleStart(entryID string, values map[string]string) error {
	return e.run.HandleStart(context.Background(), streams.Message{Stream: e.startStream, ID: entryID, Values: values, Deliveries: 1})
}

func (e *env) handleStop(entryID string, values map[string]string) error {
	return e.run.HandleStop(context.Background(), streams.Message{Stream: e.stopStream, ID: entryID, Values: values, Deliveries: 1})
}

func newEntryID() string {
	return fmt.Sprintf("%d-%d", time.Now().UnixMilli(), entrySeq.Add(1))
}

func gameID(t *testing.T) string {
	return "game-" + strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name())) + "-" + strconv.FormatInt(seq.Add(1), 10)
}

// entries returns every entry of a stream.
func (e *env) entries(stream string) []redis.XMessage {
	e.t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		e.t.Fatalf("read %s: %v", stream, err)
	}
	return msgs
}

func field(m redis.XMessage, k string) string {
	s, _ := m.Values[k].(string)
	return s
}

func (e *env) results(gameID string) []redis.XMessage {
	var out []redis.XMessage
	for _, m := range e.entries(e.resultsStream) {
		if field(m, "game_id") == gameID {
			out = append(out, m)
		}
	}
	return out
}

type intent struct {
	entry   redis.XMessage
	payload runner.IntentPayload
}

func (e *env) intents(gameID string) []intent {
	e.t.Helper()
	var out []intent
	for _, m := range e.entries(e.intentsStream) {
		var p runner.IntentPayload
		dec := json.NewDecoder(strings.NewReader(field(m, "payload_json")))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			e.t.Fatalf("intent %s: payload_json %q: %v", m.ID, field(m, "payload_json"), err)
		}
		if p.GameID == gameID {
			out = append(out, intent{m, p})
		}
	}
	return out
}

func (e *env) healthEvents(gameID string) []redis.XMessage {
	var out []redis.XMessage
	for _, m := range e.entries(e.healthStream) {
		if field(m, "game_id") == gameID {
			out = append(out, m)
		}
	}
	return out
}

// eventually polls cond until it is true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containersOfGame lists every container, ours or not, named for the game or
// labelled with it.
func (e *env) containersOfGame(gameID string) []string {
	e.t.Helper()
	f := client.Filters{}.Add("label", docker.LabelGameID+"="+gameID)
	res, err := e.engine.Client.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatalf("list containers: %v", err)
	}
	ids := []string{}
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

func (e *env) runtime(gameID string) store.Runtime {
	e.t.Helper()
	rt, err := e.st.Runtime(context.Background(), gameID)
	if err != nil {
		e.t.Fatalf("runtime %s: %v", gameID, err)
	}
	return rt
}
