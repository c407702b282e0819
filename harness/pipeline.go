package harness

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// PipelineStreams are the stream names one pipeline uses. Each pipeline gets
// its own, so parallel processes and suites never read each other's entries.
type PipelineStreams struct {
	StartJobs    string
	StopJobs     string
	JobResults   string
	HealthEvents string
	Intents      string
	MailCommands string
}

// All lists every stream with its dead-letter stream, for dumps.
func (s PipelineStreams) All() []string {
	var out []string
	for _, name := range []string{s.StartJobs, s.StopJobs, s.JobResults, s.HealthEvents, s.Intents, s.MailCommands} {
		out = append(out, name, name+":dead")
	}
	return out
}

// PipelineOptions shapes a pipeline.
type PipelineOptions struct {
	// AdminEmails maps a notification type to its comma-separated admin list
	// (NOTIFICATION_ADMIN_EMAILS_<TYPE>).
	AdminEmails map[string]string
	// Env adds or overrides variables per service name (userservice, mail,
	// notification, rtmanager).
	Env map[string]map[string]string
}

// Pipeline is the four services started for one Ginkgo process (or one plain
// go test) against the shared Infra, wired exactly as the seed boundary test
// wires them: RTM → notification:intents → Notification → mail commands →
// Mail, with the User Service behind Notification.
type Pipeline struct {
	Redis         *redis.Client
	Streams       PipelineStreams
	DockerNetwork string
	StateRoot     string

	UserURL, MailURL, NotificationURL, RTManagerURL string

	User, Mail, Notification, RTManager *Process
}

// Processes returns the four service processes.
func (p *Pipeline) Processes() []*Process {
	return []*Process{p.RTManager, p.Notification, p.Mail, p.User}
}

// AdminEmailsVariable is the Notification variable holding notificationType's
// admin list: runtime.image_pull_failed →
// NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED.
func AdminEmailsVariable(notificationType string) string {
	return "NOTIFICATION_ADMIN_EMAILS_" + strings.ToUpper(strings.ReplaceAll(notificationType, ".", "_"))
}

// StartPipeline starts the User Service, Mail (stub SMTP), Notification and
// the Runtime Manager, each with a fresh database, on per-pipeline streams
// and a per-pipeline Docker network, and waits until each is ready. They are
// stopped on clean-up.
func StartPipeline(ctx context.Context, tb TB, infra Infra, opts PipelineOptions) *Pipeline {
	tb.Helper()
	suffix := UniqueSuffix()
	streams := PipelineStreams{
		StartJobs:    "runtime:start_jobs:" + suffix,
		StopJobs:     "runtime:stop_jobs:" + suffix,
		JobResults:   "runtime:job_results:" + suffix,
		HealthEvents: "runtime:health_events:" + suffix,
		Intents:      "notification:intents:" + suffix,
		MailCommands: "mail:delivery_commands:" + suffix,
	}
	rdb := redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true})
	tb.Cleanup(func() { _ = rdb.Close() })
	p := &Pipeline{
		Redis:         rdb,
		Streams:       streams,
		DockerNetwork: EnsureDockerNetwork(ctx, tb),
		StateRoot:     tb.TempDir(),
	}
	pg := infra.Postgres()
	database := func(service string) string {
		dsn, err := pg.CreateDatabase(ctx, service+"_"+suffix)
		if err != nil {
			tb.Fatalf("create %s database: %v", service, err)
		}
		return dsn
	}
	common := func(prefix, service string) map[string]string {
		env := map[string]string{
			prefix + "LOG_LEVEL":          "info",
			prefix + "REDIS_ADDR":         infra.RedisAddr,
			prefix + "POSTGRES_DSN":       database(service),
			prefix + "INTERNAL_HTTP_ADDR": FreeTCPAddress(tb),
			prefix + "SHUTDOWN_TIMEOUT":   "5s",
			prefix + "STREAM_CLAIM_IDLE":  "2s",
			prefix + "STREAM_CONSUMER":    service + "-" + suffix,
			"OTEL_TRACES_EXPORTER":        "none",
			"OTEL_METRICS_EXPORTER":       "none",
		}
		maps.Copy(env, opts.Env[service])
		return env
	}
	start := func(service, prefix string, env map[string]string) (*Process, string) {
		proc := StartProcess(tb, service, infra.Binary(tb, service), env)
		base := "http://" + env[prefix+"INTERNAL_HTTP_ADDR"]
		WaitForHTTPStatus(tb, proc, base+"/readyz", http.StatusOK)
		return proc, base
	}

	userEnv := common("USERSERVICE_", "userservice")
	p.User, p.UserURL = start("userservice", "USERSERVICE_", userEnv)

	mailEnv := common("MAIL_", "mail")
	root, err := RepoRoot()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	mailEnv["MAIL_TEMPLATE_DIR"] = filepath.Join(root, "mail", "templates")
	mailEnv["MAIL_SMTP_MODE"] = "stub"
	mailEnv["MAIL_COMMANDS_STREAM"] = streams.MailCommands
	mailEnv["MAIL_STREAM_BLOCK_TIMEOUT"] = "100ms"
	mailEnv["MAIL_OPERATOR_REQUEST_TIMEOUT"] = "1s"
	maps.Copy(mailEnv, opts.Env["mail"])
	p.Mail, p.MailURL = start("mail", "MAIL_", mailEnv)

	notificationEnv := common("NOTIFICATION_", "notification")
	notificationEnv["NOTIFICATION_USER_SERVICE_BASE_URL"] = p.UserURL
	notificationEnv["NOTIFICATION_USER_SERVICE_TIMEOUT"] = "1s"
	notificationEnv["NOTIFICATION_INTENTS_READ_BLOCK_TIMEOUT"] = "100ms"
	notificationEnv["NOTIFICATION_ROUTE_BACKOFF_MIN"] = "100ms"
	notificationEnv["NOTIFICATION_ROUTE_BACKOFF_MAX"] = "100ms"
	notificationEnv["NOTIFICATION_INTENTS_STREAM"] = streams.Intents
	notificationEnv["NOTIFICATION_MAIL_COMMANDS_STREAM"] = streams.MailCommands
	for notificationType, list := range opts.AdminEmails {
		notificationEnv[AdminEmailsVariable(notificationType)] = list
	}
	maps.Copy(notificationEnv, opts.Env["notification"])
	p.Notification, p.NotificationURL = start("notification", "NOTIFICATION_", notificationEnv)

	rtmEnv := common("RTMANAGER_", "rtmanager")
	for k, v := range map[string]string{
		// No Lobby runs; the lookup is best-effort and must not abort starts.
		"RTMANAGER_LOBBY_INTERNAL_BASE_URL":     "http://127.0.0.1:1",
		"RTMANAGER_LOBBY_INTERNAL_TIMEOUT":      "200ms",
		"RTMANAGER_DOCKER_HOST":                 infra.DockerHost,
		"RTMANAGER_DOCKER_NETWORK":              p.DockerNetwork,
		"RTMANAGER_GAME_STATE_ROOT":             p.StateRoot,
		"RTMANAGER_REDIS_START_JOBS_STREAM":     streams.StartJobs,
		"RTMANAGER_REDIS_STOP_JOBS_STREAM":      streams.StopJobs,
		"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    streams.JobResults,
		"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  streams.HealthEvents,
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": streams.Intents,
		"RTMANAGER_STREAM_BLOCK_TIMEOUT":        "200ms",
		"RTMANAGER_RECONCILE_INTERVAL":          "5s",
		"RTMANAGER_CLEANUP_INTERVAL":            "5s",
		"RTMANAGER_INSPECT_INTERVAL":            "1s",
		"RTMANAGER_PROBE_INTERVAL":              "1s",
		"RTMANAGER_PROBE_TIMEOUT":               "1s",
		"RTMANAGER_PROBE_FAILURES_THRESHOLD":    "3",
		"RTMANAGER_GAME_LEASE_TTL_SECONDS":      "30",
		"RTMANAGER_IMAGE_PULL_POLICY":           "if_missing",
		"RTMANAGER_INSTANCE_ID":                 "rtm-" + suffix,
	} {
		rtmEnv[k] = v
	}
	maps.Copy(rtmEnv, opts.Env["rtmanager"])
	p.RTManager, p.RTManagerURL = start("rtmanager", "RTMANAGER_", rtmEnv)
	return p
}

// DumpStreams renders every stream of the pipeline, for a failed spec's report.
func (p *Pipeline) DumpStreams(ctx context.Context) string {
	var b strings.Builder
	for _, name := range p.Streams.All() {
		entries, err := p.Redis.XRange(ctx, name, "-", "+").Result()
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
			continue
		}
		if len(entries) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s (%d entries):\n", name, len(entries))
		for _, e := range entries {
			fmt.Fprintf(&b, "  %s %v\n", e.ID, e.Values)
		}
	}
	return b.String()
}

// PublishStartJob appends a start job with the given fields, adding
// requested_at_ms when absent, and returns the entry ID.
func (p *Pipeline) PublishStartJob(ctx context.Context, fields map[string]string) (string, error) {
	values := map[string]any{}
	for k, v := range fields {
		values[k] = v
	}
	if _, ok := values["requested_at_ms"]; !ok {
		values["requested_at_ms"] = fmt.Sprint(time.Now().UnixMilli())
	}
	return p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: p.Streams.StartJobs, Values: values}).Result()
}

// PublishStopJob appends a stop job for gameID.
func (p *Pipeline) PublishStopJob(ctx context.Context, gameID string) (string, error) {
	return p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: p.Streams.StopJobs, Values: map[string]any{
		"game_id":         gameID,
		"requested_at_ms": fmt.Sprint(time.Now().UnixMilli()),
	}}).Result()
}
