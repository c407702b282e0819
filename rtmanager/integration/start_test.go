package integration_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"galaxy/harness"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/monitor"
	"galaxy/rtmanager/store"
)

// failedStart asserts the single failed result and the single admin intent
// of a start job, and that no container is left, and returns the message.
func (e *env) failedStart(gameID, imageRef, code string) string {
	e.t.Helper()
	results := e.results(gameID)
	if len(results) != 1 {
		e.t.Fatalf("want 1 job result for %s, got %d: %v", gameID, len(results), results)
	}
	r := results[0]
	for k, want := range map[string]string{
		"job_kind": "start", "outcome": "failed", "error_code": code, "image_ref": imageRef, "game_id": gameID,
	} {
		if got := field(r, k); got != want {
			e.t.Errorf("result %s = %q, want %q", k, got, want)
		}
	}
	if field(r, "error_message") == "" || field(r, "finished_at_ms") == "" || field(r, "job_id") == "" {
		e.t.Errorf("result lacks error_message, finished_at_ms or job_id: %v", r.Values)
	}
	intents := e.intents(gameID)
	if len(intents) != 1 {
		e.t.Fatalf("want 1 intent for %s, got %d", gameID, len(intents))
	}
	in := intents[0]
	for k, want := range map[string]string{
		"notification_type": "runtime." + code, "producer": "runtime_manager", "audience_kind": "admin_email",
		"idempotency_key": "runtime:" + e.instance + "/" + field(r, "job_id"),
	} {
		if got := field(in.entry, k); got != want {
			e.t.Errorf("intent %s = %q, want %q", k, got, want)
		}
	}
	p := in.payload
	if p.GameID != gameID || p.ImageRef != imageRef || p.ErrorCode != code || p.ErrorMessage == "" || p.AttemptedAtMS == 0 {
		e.t.Errorf("intent payload = %+v", p)
	}
	if p.ErrorMessage != field(r, "error_message") {
		e.t.Errorf("intent and result disagree: %q vs %q", p.ErrorMessage, field(r, "error_message"))
	}
	if field(in.entry, "occurred_at_ms") == "" {
		e.t.Errorf("intent lacks occurred_at_ms")
	}
	if ids := e.containersOfGame(gameID); len(ids) != 0 {
		e.t.Errorf("failed start left containers behind: %v", ids)
	}
	e.t.Logf("%s error_message: %s", code, p.ErrorMessage)
	return p.ErrorMessage
}

func TestStartImageFromUnreachableRegistryIsImagePullFailed(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	const ref = "galaxy/integration-missing:0.0.0"
	if err := e.handleStart(newEntryID(), startValues(g, ref)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	msg := e.failedStart(g, ref, "image_pull_failed")
	if !strings.Contains(msg, "pull galaxy/integration-missing:0.0.0") {
		t.Errorf("message does not name the pull: %q", msg)
	}
	rt := e.runtime(g)
	if rt.State != store.StateFailed || rt.LastErrorCode != "image_pull_failed" || rt.ContainerID != "" {
		t.Errorf("runtime = %+v", rt)
	}
}

func TestStartAbsentImageWithPolicyNeverIsImagePullFailed(t *testing.T) {
	e := newEnv(t, options{pullPolicy: docker.PullNever})
	g := gameID(t)
	ref := shared.registry.Ref("galaxy/never-pulled", "1")
	if err := e.handleStart(newEntryID(), startValues(g, ref)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	msg := e.failedStart(g, ref, "image_pull_failed")
	if !strings.Contains(msg, "pull policy is never") {
		t.Errorf("message does not name the policy: %q", msg)
	}
}

func TestStartUnknownTagOnReachableRegistryIsImagePullFailed(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.missingImage)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	e.failedStart(g, shared.missingImage, "image_pull_failed")
}

func TestStartBrokenEntrypointIsContainerStartFailed(t *testing.T) {
	for name, image := range map[string]string{"missing": shared.brokenImage, "not executable": shared.nonExecImage} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, options{})
			g := gameID(t)
			if err := e.handleStart(newEntryID(), startValues(g, image)); err != nil {
				t.Fatalf("handle: %v", err)
			}
			e.failedStart(g, image, "container_start_failed")
			if rt := e.runtime(g); rt.State != store.StateFailed || rt.LastErrorCode != "container_start_failed" {
				t.Errorf("runtime = %+v", rt)
			}
		})
	}
}

func TestStartOnMissingNetworkIsContainerStartFailed(t *testing.T) {
	e := newEnv(t, options{network: "galaxy-no-such-network-" + harness.UniqueSuffix()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	msg := e.failedStart(g, shared.gameImage, "container_start_failed")
	if !strings.Contains(msg, "network") {
		t.Errorf("message does not name the network: %q", msg)
	}
}

// TestStartConfigInvalidNamesTheField drives the handler with one invalid
// field at a time; jobspec's unit tests cover every rule, this covers the
// wire: one result, one intent, the field named, no runtime row.
func TestStartConfigInvalidNamesTheField(t *testing.T) {
	e := newEnv(t, options{})
	cases := map[string]struct {
		mutate func(v map[string]string)
		field  string
	}{
		"game_id":        {func(v map[string]string) { v["game_id"] = "bad/id" }, "game_id"},
		"image_ref":      {func(v map[string]string) { v["image_ref"] = "Not A Ref" }, "image_ref"},
		"requested_at":   {func(v map[string]string) { v["requested_at_ms"] = "soon" }, "requested_at_ms"},
		"unknown key":    {func(v map[string]string) { v["config_json"] = `{"privileged":true}` }, "config_json.privileged"},
		"env":            {func(v map[string]string) { v["config_json"] = `{"env":{"A":1}}` }, "config_json.env.A"},
		"cmd":            {func(v map[string]string) { v["config_json"] = `{"cmd":"x"}` }, "config_json.cmd"},
		"labels":         {func(v map[string]string) { v["config_json"] = `{"labels":[]}` }, "config_json.labels"},
		"memory_mb":      {func(v map[string]string) { v["config_json"] = `{"memory_mb":0}` }, "config_json.memory_mb"},
		"cpus":           {func(v map[string]string) { v["config_json"] = `{"cpus":-1}` }, "config_json.cpus"},
		"port":           {func(v map[string]string) { v["config_json"] = `{"port":70000}` }, "config_json.port"},
		"health_path":    {func(v map[string]string) { v["config_json"] = `{"health_path":"x"}` }, "config_json.health_path"},
		"not an object":  {func(v map[string]string) { v["config_json"] = `[1]` }, "config_json"},
		"reserved label": {func(v map[string]string) { v["config_json"] = `{"labels":{"galaxy.rtmanager.managed":"x"}}` }, "config_json.labels"},
	}
	parent := e.t
	defer func() { e.t = parent }()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e.t = t
			g := gameID(t)
			v := startValues(g, shared.gameImage)
			tc.mutate(v)
			if err := e.handleStart(newEntryID(), v); err != nil {
				t.Fatalf("handle: %v", err)
			}
			// An invalid game_id cannot find the result by game; look it up by value.
			gid := v["game_id"]
			msg := e.failedStart(gid, v["image_ref"], "start_config_invalid")
			if !strings.Contains(msg, tc.field+":") {
				t.Errorf("message %q does not name %s", msg, tc.field)
			}
			if _, err := e.st.Runtime(context.Background(), gid); err == nil {
				t.Errorf("an invalid job created a runtime row")
			}
		})
	}
}

func TestStartRunsTheGameAndAStartOfARunningGameReusesIt(t *testing.T) {
	e := newEnv(t, options{probe: fastProbe()})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage,
		"config_json", gameConfig(t, map[string]string{"GAME_GREETING": "hi"}), "job_id", "job-"+g)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	results := e.results(g)
	if len(results) != 1 || field(results[0], "outcome") != "succeeded" {
		t.Fatalf("results = %v", results)
	}
	r := results[0]
	if field(r, "job_id") != "job-"+g || field(r, "container_id") == "" || field(r, "error_code") != "" {
		t.Errorf("result = %v", r.Values)
	}
	if n := len(e.entries(e.intentsStream)); n != 0 {
		t.Errorf("a successful start published %d intents", n)
	}
	rt := e.runtime(g)
	if rt.State != store.StateRunning || rt.ContainerID != field(r, "container_id") || rt.ContainerIP == "" {
		t.Errorf("runtime = %+v", rt)
	}
	// The container: name, labels, network, state mount, limits.
	in, err := e.engine.Client.ContainerInspect(context.Background(), rt.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := in.Container
	if c.Name != "/galaxy-game-"+g || !c.State.Running {
		t.Errorf("container %s running=%v", c.Name, c.State.Running)
	}
	labels := c.Config.Labels
	if labels[docker.LabelGameID] != g || labels[docker.LabelInstance] != e.instance || labels[docker.LabelManaged] != "true" || labels[harness.LabelHarness] != "true" {
		t.Errorf("labels = %v", labels)
	}
	if _, ok := c.NetworkSettings.Networks[e.network]; !ok {
		t.Errorf("not on network %s: %v", e.network, c.NetworkSettings.Networks)
	}
	stateDir := filepath.Join(e.root, g)
	if len(c.Mounts) != 1 || c.Mounts[0].Source != stateDir || c.Mounts[0].Destination != "/state" {
		t.Errorf("mounts = %+v", c.Mounts)
	}
	if c.HostConfig.Memory != 64<<20 || c.HostConfig.NanoCPUs != 5e8 {
		t.Errorf("limits memory=%d nanocpus=%d", c.HostConfig.Memory, c.HostConfig.NanoCPUs)
	}
	if !containsString(c.Config.Env, "GAME_GREETING=hi") {
		t.Errorf("env = %v", c.Config.Env)
	}

	// The probe finds it healthy: one healthy event.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.mon.RunProbe(ctx) }()
	eventually(t, 20*time.Second, "healthy event", func() bool { return len(e.healthEvents(g)) == 1 })
	ev := e.healthEvents(g)[0]
	if field(ev, "event") != "healthy" || field(ev, "container_id") != rt.ContainerID || field(ev, "observed_at_ms") == "" {
		t.Errorf("event = %v", ev.Values)
	}
	time.Sleep(time.Second) // more probes: still one event
	if n := len(e.healthEvents(g)); n != 1 {
		t.Errorf("want exactly one healthy event, got %d", n)
	}

	// A second start job for the running game: succeeded, same container.
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage)); err != nil {
		t.Fatalf("second start: %v", err)
	}
	results = e.results(g)
	if len(results) != 2 || field(results[1], "outcome") != "succeeded" || field(results[1], "container_id") != rt.ContainerID {
		t.Fatalf("second result = %v", results)
	}
	if ids := e.containersOfGame(g); len(ids) != 1 {
		t.Errorf("want one container, got %v", ids)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fastProbe() monitor.Config {
	return monitor.Config{ProbeInterval: 200 * time.Millisecond, ProbeTimeout: time.Second, ProbeThreshold: 3,
		InspectInterval: 200 * time.Millisecond, ReconcileInterval: 300 * time.Millisecond, CleanupInterval: 300 * time.Millisecond}
}

func TestStopRemovesTheContainerAndKeepsTheState(t *testing.T) {
	e := newEnv(t, options{})
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	rt := e.runtime(g)
	if rt.State != store.StateRunning {
		t.Fatalf("runtime = %+v", rt)
	}
	marker := filepath.Join(e.root, g, "kept")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.handleStop(newEntryID(), map[string]string{"game_id": g, "requested_at_ms": "1", "reason": "finished"}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	results := e.results(g)
	if len(results) != 2 {
		t.Fatalf("results = %v", results)
	}
	s := results[1]
	if field(s, "job_kind") != "stop" || field(s, "outcome") != "succeeded" || field(s, "container_id") != rt.ContainerID {
		t.Errorf("stop result = %v", s.Values)
	}
	if ids := e.containersOfGame(g); len(ids) != 0 {
		t.Errorf("stop left containers: %v", ids)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("state directory not kept: %v", err)
	}
	if rt := e.runtime(g); rt.State != store.StateStopped || rt.ContainerID != "" {
		t.Errorf("runtime = %+v", rt)
	}
	// Stopping again, and stopping an unknown game, succeed.
	for _, id := range []string{g, "never-started-" + g} {
		if err := e.handleStop(newEntryID(), map[string]string{"game_id": id, "requested_at_ms": "1"}); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		rs := e.results(id)
		if last := rs[len(rs)-1]; field(last, "outcome") != "succeeded" {
			t.Errorf("stop of %s = %v", id, last.Values)
		}
	}
	// An invalid stop fails without an intent.
	if err := e.handleStop(newEntryID(), map[string]string{"game_id": "bad id"}); err != nil {
		t.Fatal(err)
	}
	rs := e.results("bad id")
	if len(rs) != 1 || field(rs[0], "error_code") != "stop_job_invalid" {
		t.Errorf("invalid stop = %v", rs)
	}
	if n := len(e.entries(e.intentsStream)); n != 0 {
		t.Errorf("stops published %d intents", n)
	}
}

// TestPullFailureInsideTheProgressStreamIsImagePullFailed makes the daemon's
// pull fail after it has answered 200: the manifest exists but its config
// blob has been deleted from the registry, so the failure arrives as an
// errorDetail inside the progress stream. A reader that stops at the status
// code would take this pull for a success.
func TestPullFailureInsideTheProgressStreamIsImagePullFailed(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	tag := harness.UniqueSuffix()
	ref := harness.BuildBrokenEntrypointImage(ctx, t, shared.registry, "galaxy/blobless", tag)
	base := "http://" + shared.registry.Host + "/v2/galaxy/blobless"
	var manifest struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	_, err := harness.DoJSON(ctx, harness.Request{
		URL:    base + "/manifests/" + tag,
		Header: http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"}},
	}, &manifest)
	if err != nil || manifest.Config.Digest == "" {
		t.Fatalf("manifest of %s: %v", ref, err)
	}
	resp, err := harness.Do(ctx, harness.Request{Method: http.MethodDelete, URL: base + "/blobs/" + manifest.Config.Digest})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status/100 != 2 {
		t.Fatalf("delete config blob: %d %s", resp.Status, resp.Body)
	}
	g := gameID(t)
	if err := e.handleStart(newEntryID(), startValues(g, ref)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	msg := e.failedStart(g, ref, "image_pull_failed")
	// The client prefixes errors of a non-2xx answer with this; an error
	// read from the stream has no such prefix.
	if strings.Contains(msg, "Error response from daemon") {
		t.Errorf("the daemon failed the request itself, not inside the stream: %q", msg)
	}
}

// TestPullThatOutlivesTheTimeoutIsImagePullFailed points at a "registry"
// that accepts connections and never answers: the pull is abandoned at
// RTMANAGER_IMAGE_PULL_TIMEOUT.
func TestPullThatOutlivesTheTimeoutIsImagePullFailed(t *testing.T) {
	e := newEnv(t, options{})
	e.run.Cfg.PullTimeout = 2 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	g := gameID(t)
	ref := l.Addr().String() + "/galaxy/slow:1"
	began := time.Now()
	if err := e.handleStart(newEntryID(), startValues(g, ref)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the pull took %s despite a 2s timeout", took)
	}
	msg := e.failedStart(g, ref, "image_pull_failed")
	if !strings.Contains(msg, "no answer within 2s") {
		t.Errorf("message does not name the timeout: %q", msg)
	}
}

// TestNameTakenByAForeignContainerIsContainerStartFailed: a container this
// manager does not own holds galaxy-game-<id>; the start fails and the
// foreign container is left alone.
func TestNameTakenByAForeignContainerIsContainerStartFailed(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	g := gameID(t)
	// Pull the image through another game first, so only the name conflicts.
	if err := e.handleStart(newEntryID(), startValues(gameID(t), shared.gameImage, "config_json", gameConfig(t, nil))); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   docker.ContainerName(g),
		Config: &container.Config{Image: shared.gameImage, Labels: harness.OwnerLabels()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.engine.Remove(context.Background(), res.ID) })
	if err := e.handleStart(newEntryID(), startValues(g, shared.gameImage)); err != nil {
		t.Fatalf("handle: %v", err)
	}
	results := e.results(g)
	if len(results) != 1 || field(results[0], "error_code") != "container_start_failed" {
		t.Fatalf("results = %v", results)
	}
	t.Logf("container_start_failed error_message: %s", field(results[0], "error_message"))
	if _, err := e.engine.Inspect(ctx, res.ID); err != nil {
		t.Errorf("the foreign container was removed: %v", err)
	}
}
