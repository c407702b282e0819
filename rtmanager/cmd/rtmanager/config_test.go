package main

import (
	"os"
	"strings"
	"testing"

	"galaxy/platform/config"
)

func TestInstanceIDFollowsTheDatabaseNotThePassword(t *testing.T) {
	a := instanceID("postgres://rtm:one@db:5432/games?sslmode=disable")
	b := instanceID("postgres://rtm:two@db:5432/games?sslmode=disable")
	c := instanceID("postgres://rtm:one@db:5432/other?sslmode=disable")
	if a != b {
		t.Errorf("the password changed the identity: %s vs %s", a, b)
	}
	if a == c {
		t.Errorf("two databases share the identity %s", a)
	}
}

// The default identity is the deployment's, not the machine's: a manager
// whose container is re-created (a new host name) must still own the game
// containers it started, or they drop out of management for good.
func TestInstanceIDDoesNotNameTheHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("host name: %q, %v", host, err)
	}
	id := instanceID("postgres://rtm:one@db:5432/games?sslmode=disable")
	if strings.Contains(id, host) {
		t.Fatalf("identity %q names the host %q", id, host)
	}
	if !strings.HasPrefix(id, "rtmanager-") {
		t.Fatalf("identity %q: want rtmanager-<hash of the database>", id)
	}
}

func TestConfigDefaultsAndRules(t *testing.T) {
	cfg, err := config.LoadFrom[Config](prefix, map[string]string{"RTMANAGER_POSTGRES_DSN": "postgres://x@db/rtm"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8084" || cfg.ImagePullPolicy != "if_missing" || cfg.ImagePullTimeout.D().String() != "20s" ||
		cfg.StartJobsStream != "runtime:start_jobs" || cfg.InstanceID == "" || cfg.DockerCallTimeout.D().String() != "30s" {
		t.Errorf("defaults = %+v", cfg)
	}
	for variable, value := range map[string]string{
		"RTMANAGER_IMAGE_PULL_POLICY":        "sometimes",
		"RTMANAGER_GAME_LEASE_TTL_SECONDS":   "0",
		"RTMANAGER_PROBE_FAILURES_THRESHOLD": "0",
		"RTMANAGER_JOB_CONCURRENCY":          "0",
		"RTMANAGER_DOCKER_HOST":              "/var/run/docker.sock",
		"RTMANAGER_LOBBY_INTERNAL_BASE_URL":  "lobby:8080",
		"RTMANAGER_DOCKER_NETWORK":           " ",
		"RTMANAGER_PROBE_TIMEOUT":            "0s",
		"RTMANAGER_DOCKER_CALL_TIMEOUT":      "100ms",
		"RTMANAGER_INSTANCE_ID":              strings.Repeat("i", 248),
	} {
		_, err := config.LoadFrom[Config](prefix, map[string]string{"RTMANAGER_POSTGRES_DSN": "postgres://x@db/rtm", variable: value})
		if err == nil || !strings.Contains(err.Error(), variable) {
			t.Errorf("%s=%q: error %v does not name the variable", variable, value, err)
		}
	}
}

func TestDockerCallTimeoutIsBounded(t *testing.T) {
	for _, value := range []string{"soon", "0s", "-1s", "999ms", "11m"} {
		_, err := config.LoadFrom[Config](prefix, map[string]string{"RTMANAGER_POSTGRES_DSN": "postgres://x@db/rtm", "RTMANAGER_DOCKER_CALL_TIMEOUT": value})
		if err == nil || !strings.Contains(err.Error(), "RTMANAGER_DOCKER_CALL_TIMEOUT") {
			t.Errorf("RTMANAGER_DOCKER_CALL_TIMEOUT=%q: error %v does not name the variable", value, err)
		}
	}
	for value, want := range map[string]string{"1s": "1s", "10m": "10m0s", "45s": "45s"} {
		cfg, err := config.LoadFrom[Config](prefix, map[string]string{"RTMANAGER_POSTGRES_DSN": "postgres://x@db/rtm", "RTMANAGER_DOCKER_CALL_TIMEOUT": value})
		if err != nil || cfg.DockerCallTimeout.D().String() != want {
			t.Errorf("RTMANAGER_DOCKER_CALL_TIMEOUT=%q: %v, %v", value, cfg.DockerCallTimeout.D(), err)
		}
	}
}

// The longest instance ID still fits every intent's idempotency key.
func TestInstanceIDOfTheLongestLengthIsAccepted(t *testing.T) {
	id := strings.Repeat("i", 247)
	cfg, err := config.LoadFrom[Config](prefix, map[string]string{"RTMANAGER_POSTGRES_DSN": "postgres://x@db/rtm", "RTMANAGER_INSTANCE_ID": id})
	if err != nil || cfg.InstanceID != id {
		t.Fatalf("247-byte RTMANAGER_INSTANCE_ID: %v", err)
	}
	if n := len("runtime:" + id + "/" + strings.Repeat("j", 256)); n != 512 {
		t.Fatalf("the longest intent key is %d bytes; want 512", n)
	}
}
