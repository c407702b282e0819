package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

// service is one of the four binaries, as these specs need it.
type service struct {
	name        string // binary and process name
	prefix      string // environment prefix
	defaultAddr string // CONTRACTS §2: loopback, a fixed port per service
	// apiPath is a GET route of the internal API that answers 200 on an
	// empty database.
	apiPath string
}

var services = []service{
	{"userservice", "USERSERVICE_", "127.0.0.1:8081", "/api/v1/internal/users/nobody/exists"},
	{"mail", "MAIL_", "127.0.0.1:8082", "/api/v1/internal/deliveries"},
	{"notification", "NOTIFICATION_", "127.0.0.1:8083", "/api/v1/internal/notifications"},
	{"rtmanager", "RTMANAGER_", "127.0.0.1:8084", "/api/v1/internal/runtimes"},
}

// serviceEnv is what s needs to start against the shared infrastructure, on
// streams and a database of its own, without <P>_INTERNAL_HTTP_ADDR. Logs
// are at debug level: a secret must not leak at any level. userURL is
// Notification's User Service.
func serviceEnv(ctx context.Context, s service, userURL string) map[string]string {
	suffix := harness.UniqueSuffix()
	dsn, err := infra.Postgres().CreateDatabase(ctx, s.name+"_"+suffix)
	Expect(err).NotTo(HaveOccurred())
	p := s.prefix
	env := map[string]string{
		p + "LOG_LEVEL":         "debug",
		p + "REDIS_ADDR":        infra.RedisAddr,
		p + "POSTGRES_DSN":      dsn,
		p + "SHUTDOWN_TIMEOUT":  "5s",
		p + "STREAM_CONSUMER":   s.name + "-" + suffix,
		"OTEL_TRACES_EXPORTER":  "none",
		"OTEL_METRICS_EXPORTER": "none",
	}
	switch s.name {
	case "mail":
		root, err := harness.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		maps.Copy(env, map[string]string{
			"MAIL_TEMPLATE_DIR":    filepath.Join(root, "mail", "templates"),
			"MAIL_COMMANDS_STREAM": "mail:delivery_commands:" + suffix,
			"MAIL_SMTP_MODE":       "stub",
		})
	case "notification":
		maps.Copy(env, map[string]string{
			"NOTIFICATION_INTENTS_STREAM":        "notification:intents:" + suffix,
			"NOTIFICATION_MAIL_COMMANDS_STREAM":  "mail:delivery_commands:" + suffix,
			"NOTIFICATION_USER_SERVICE_BASE_URL": userURL,
		})
	case "rtmanager":
		maps.Copy(env, map[string]string{
			"RTMANAGER_DOCKER_HOST":                 infra.DockerHost,
			"RTMANAGER_DOCKER_NETWORK":              harness.EnsureDockerNetwork(ctx, GinkgoT()),
			"RTMANAGER_GAME_STATE_ROOT":             GinkgoT().TempDir(),
			"RTMANAGER_INSTANCE_ID":                 "rtm-" + suffix,
			"RTMANAGER_REDIS_START_JOBS_STREAM":     "runtime:start_jobs:" + suffix,
			"RTMANAGER_REDIS_STOP_JOBS_STREAM":      "runtime:stop_jobs:" + suffix,
			"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    "runtime:job_results:" + suffix,
			"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  "runtime:health_events:" + suffix,
			"RTMANAGER_NOTIFICATION_INTENTS_STREAM": "notification:intents:" + suffix,
		})
	}
	return env
}

// startService starts s on a free loopback port with env plus extra and
// waits until it is ready; it returns the process and the API's base URL.
func startService(ctx context.Context, s service, userURL string, extra map[string]string) (*harness.Process, string) {
	env := serviceEnv(ctx, s, userURL)
	addr := harness.FreeTCPAddress(GinkgoT())
	env[s.prefix+"INTERNAL_HTTP_ADDR"] = addr
	maps.Copy(env, extra)
	p := harness.StartProcess(GinkgoT(), s.name, infra.Binary(GinkgoT(), s.name), env)
	DeferCleanup(harness.AttachLogsOnFailure, p)
	base := "http://" + addr
	harness.WaitForHTTPStatus(GinkgoT(), p, base+"/readyz", http.StatusOK)
	return p, base
}

// newSecret returns a value no log line, metric or answer could hold by
// chance: what names it, then 128 random bits in hex.
func newSecret(what string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return what + hex.EncodeToString(b)
}
