package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"galaxy/platform/config"
	"galaxy/rtmanager/docker"
)

// Config is the Runtime Manager's configuration (prefix RTMANAGER_).
type Config struct {
	config.Base
	HTTPAddr config.Addr `env:"INTERNAL_HTTP_ADDR" envDefault:"127.0.0.1:8084"`

	StartJobsStream    string          `env:"REDIS_START_JOBS_STREAM" envDefault:"runtime:start_jobs"`
	StopJobsStream     string          `env:"REDIS_STOP_JOBS_STREAM" envDefault:"runtime:stop_jobs"`
	JobResultsStream   string          `env:"REDIS_JOB_RESULTS_STREAM" envDefault:"runtime:job_results"`
	HealthEventsStream string          `env:"REDIS_HEALTH_EVENTS_STREAM" envDefault:"runtime:health_events"`
	IntentsStream      string          `env:"NOTIFICATION_INTENTS_STREAM" envDefault:"notification:intents"`
	StreamBlockTimeout config.Duration `env:"STREAM_BLOCK_TIMEOUT" envDefault:"2s"`
	// JobConcurrency is how many jobs of each stream run at once; jobs for
	// the same game are serialized by the game lease whatever this is.
	JobConcurrency int `env:"JOB_CONCURRENCY" envDefault:"4"`

	DockerHost    string `env:"DOCKER_HOST" envDefault:"unix:///var/run/docker.sock"`
	DockerNetwork string `env:"DOCKER_NETWORK" envDefault:"galaxy-games"`
	// DockerCallTimeout bounds every call to the daemon but the pull
	// (ImagePullTimeout) and the stop (ContainerStopTimeout plus this).
	DockerCallTimeout config.Duration `env:"DOCKER_CALL_TIMEOUT" envDefault:"30s"`
	GameStateRoot     string          `env:"GAME_STATE_ROOT" envDefault:"/var/lib/galaxy/games"`
	// InstanceID goes into the ownership label of every container; empty
	// derives it (see instanceID).
	InstanceID string `env:"INSTANCE_ID"`

	ImagePullPolicy      string          `env:"IMAGE_PULL_POLICY" envDefault:"if_missing"`
	ImagePullTimeout     config.Duration `env:"IMAGE_PULL_TIMEOUT" envDefault:"20s"`
	ContainerStopTimeout config.Duration `env:"CONTAINER_STOP_TIMEOUT" envDefault:"10s"`

	GameLeaseTTLSeconds int `env:"GAME_LEASE_TTL_SECONDS" envDefault:"30"`
	// LeaseOwnerTTL is how long a process that died blocks the games whose
	// leases it held: its liveness key's TTL (see rtmanager/lease).
	LeaseOwnerTTL config.Duration `env:"LEASE_OWNER_TTL" envDefault:"10s"`

	LobbyBaseURL string          `env:"LOBBY_INTERNAL_BASE_URL"`
	LobbyTimeout config.Duration `env:"LOBBY_INTERNAL_TIMEOUT" envDefault:"1s"`

	ReconcileInterval      config.Duration `env:"RECONCILE_INTERVAL" envDefault:"30s"`
	CleanupInterval        config.Duration `env:"CLEANUP_INTERVAL" envDefault:"60s"`
	InspectInterval        config.Duration `env:"INSPECT_INTERVAL" envDefault:"10s"`
	ProbeInterval          config.Duration `env:"PROBE_INTERVAL" envDefault:"10s"`
	ProbeTimeout           config.Duration `env:"PROBE_TIMEOUT" envDefault:"1s"`
	ProbeFailuresThreshold int             `env:"PROBE_FAILURES_THRESHOLD" envDefault:"3"`
	OrphanGrace            config.Duration `env:"ORPHAN_GRACE" envDefault:"2m"`
}

// Validate checks the rules parsing alone does not, naming the variable.
func (c *Config) Validate(prefix string) error {
	if err := c.Base.Validate(prefix); err != nil {
		return err
	}
	switch c.ImagePullPolicy {
	case docker.PullAlways, docker.PullIfMissing, docker.PullNever:
	default:
		return fmt.Errorf("%sIMAGE_PULL_POLICY: unknown policy %q (want always, if_missing or never)", prefix, c.ImagePullPolicy)
	}
	if c.GameLeaseTTLSeconds < 1 {
		return fmt.Errorf("%sGAME_LEASE_TTL_SECONDS: must be at least 1, got %d", prefix, c.GameLeaseTTLSeconds)
	}
	if c.LeaseOwnerTTL.D() < time.Second {
		return fmt.Errorf("%sLEASE_OWNER_TTL: must be at least 1s, got %s", prefix, c.LeaseOwnerTTL.D())
	}
	// Below a second, a daemon answering normally on a busy host would fail
	// starts; above ten minutes, a silent one holds its jobs as if for ever.
	if d := c.DockerCallTimeout.D(); d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("%sDOCKER_CALL_TIMEOUT: must be from 1s to 10m, got %s", prefix, d)
	}
	if c.ProbeFailuresThreshold < 1 {
		return fmt.Errorf("%sPROBE_FAILURES_THRESHOLD: must be at least 1, got %d", prefix, c.ProbeFailuresThreshold)
	}
	if c.JobConcurrency < 1 || c.JobConcurrency > 256 {
		return fmt.Errorf("%sJOB_CONCURRENCY: must be from 1 to 256, got %d", prefix, c.JobConcurrency)
	}
	for name, v := range map[string]string{
		"REDIS_START_JOBS_STREAM": c.StartJobsStream, "REDIS_STOP_JOBS_STREAM": c.StopJobsStream,
		"REDIS_JOB_RESULTS_STREAM": c.JobResultsStream, "REDIS_HEALTH_EVENTS_STREAM": c.HealthEventsStream,
		"NOTIFICATION_INTENTS_STREAM": c.IntentsStream, "DOCKER_NETWORK": c.DockerNetwork,
	} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s%s: must not be empty", prefix, name)
		}
	}
	u, err := url.Parse(c.DockerHost)
	if err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%sDOCKER_HOST: %q is not a Docker host URL (unix:///path or tcp://host:port)", prefix, c.DockerHost)
	}
	if c.LobbyBaseURL != "" {
		u, err := url.Parse(c.LobbyBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%sLOBBY_INTERNAL_BASE_URL: %q is not an http(s) URL", prefix, c.LobbyBaseURL)
		}
	}
	// The daemon bind-mounts state directories by absolute path.
	abs, err := filepath.Abs(c.GameStateRoot)
	if err != nil || c.GameStateRoot == "" {
		return fmt.Errorf("%sGAME_STATE_ROOT: %q is not a usable directory path", prefix, c.GameStateRoot)
	}
	c.GameStateRoot = abs
	if c.InstanceID == "" {
		c.InstanceID = instanceID(c.PostgresDSN)
	}
	// The ID is part of every intent's idempotency key,
	// runtime:<instance ID>/<job ID>, which must fit Notification's 512
	// bytes with the longest job ID (docs/contracts.md, Limits).
	if len(c.InstanceID) > maxInstanceID || strings.IndexFunc(c.InstanceID, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("%sINSTANCE_ID: must be at most %d bytes without spaces or control characters, got %d bytes", prefix, maxInstanceID, len(c.InstanceID))
	}
	return nil
}

// maxInstanceID leaves room in a 512-byte idempotency key for "runtime:",
// "/" and a 256-byte job ID.
const maxInstanceID = 512 - len("runtime:/") - 256

// instanceID derives the ownership identity from the database the records
// live in, and from nothing of the machine: a manager whose container is
// re-created (a new host name) still owns the containers it started.
// Replicas sharing a database share the records and therefore the
// containers, while two managers with different databases on one daemon
// (two test runs, two environments) never take each other's containers for
// orphans. Only the database's location goes into the hash, never a
// password.
func instanceID(dsn string) string {
	where := dsn
	if cfg, err := pgx.ParseConfig(dsn); err == nil {
		where = fmt.Sprintf("%s:%d/%s@%s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	}
	sum := sha256.Sum256([]byte(where))
	return "rtmanager-" + hex.EncodeToString(sum[:4])
}
