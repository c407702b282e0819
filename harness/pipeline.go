package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

// NewPipelineStreams returns a fresh set of stream names: the contract's
// names with a UniqueSuffix. Services given the same set are wired together.
func NewPipelineStreams() PipelineStreams {
	suffix := UniqueSuffix()
	return PipelineStreams{
		StartJobs:    "runtime:start_jobs:" + suffix,
		StopJobs:     "runtime:stop_jobs:" + suffix,
		JobResults:   "runtime:job_results:" + suffix,
		HealthEvents: "runtime:health_events:" + suffix,
		Intents:      "notification:intents:" + suffix,
		MailCommands: "mail:delivery_commands:" + suffix,
	}
}

// PipelineOptions shapes a pipeline.
type PipelineOptions struct {
	// AdminEmails maps a notification type to its comma-separated admin list
	// (NOTIFICATION_ADMIN_EMAILS_<TYPE>).
	AdminEmails map[string]string
	// Env adds or overrides variables per service name (userservice, mail,
	// notification, rtmanager).
	Env map[string]map[string]string
	// Services are the services to start; nil means all four. They start
	// in dependency order whatever the order here. Without the User
	// Service, Notification's user routes fail and the pipeline waits only
	// for its /healthz; without the Runtime Manager no Docker network is
	// created.
	Services []string
	// SMTPAddr, when set, puts Mail in smtp mode against this server
	// (MAIL_SMTP_FROM is DefaultSMTPFrom) instead of the stub.
	SMTPAddr string
	// OTLPEndpoint, when set, has every service export its traces there
	// over OTLP/HTTP (OTLPEnv): an OTLPReceiver's Endpoint. Env still has
	// the last word on each variable.
	OTLPEndpoint string
}

// Pipeline is the four services started for one Ginkgo process (or one plain
// go test) against the shared Infra, wired exactly as the contract's boundary test
// wires them: RTM → notification:intents → Notification → mail commands →
// Mail, with the User Service behind Notification. The fields of a service
// left out by PipelineOptions.Services are nil or empty.
type Pipeline struct {
	Redis         *redis.Client
	Streams       PipelineStreams
	DockerNetwork string
	StateRoot     string

	UserURL, MailURL, NotificationURL, RTManagerURL string
	// Tokens are the APIs' bearer tokens; the clients of the pipeline
	// (MailClient, ...) and Settled send them.
	Tokens APITokens

	// Deployed is true for a deployment the suite did not start
	// (OpenTarget): it has no processes, and its streams carry other
	// traffic than the suite's.
	Deployed bool

	User, Mail, Notification, RTManager *Process

	// OnPublish, when set, is told of every entry a test adds through
	// PublishStartJob, PublishStopJob or Publish, after Redis took it: the
	// acceptance suite's ledger learns from it which spec created which
	// game.
	OnPublish func(stream, entryID string, fields map[string]string)

	services map[string]*Service
	// groups, when set, are the only consumer groups Observe reads.
	groups []string
}

// APITokens are the bearer tokens of a pipeline's four APIs (each
// <P>_INTERNAL_API_TOKEN); empty where the service has none.
type APITokens struct {
	User, Mail, Notification, RTManager string
}

// Processes returns the service processes, Runtime Manager first.
func (p *Pipeline) Processes() []*Process {
	var out []*Process
	for _, proc := range []*Process{p.RTManager, p.Notification, p.Mail, p.User} {
		if proc != nil {
			out = append(out, proc)
		}
	}
	return out
}

// Service returns the pipeline's service called name, or nil if it was not
// started.
func (p *Pipeline) Service(name string) *Service { return p.services[name] }

// AdminEmailsVariable is the Notification variable holding notificationType's
// admin list: runtime.image_pull_failed →
// NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED.
func AdminEmailsVariable(notificationType string) string {
	return "NOTIFICATION_ADMIN_EMAILS_" + strings.ToUpper(strings.ReplaceAll(notificationType, ".", "_"))
}

// StartPipeline starts the User Service, Mail (stub SMTP unless
// opts.SMTPAddr), Notification and the Runtime Manager through
// StartService, each with a fresh database, on per-pipeline streams and a
// per-pipeline Docker network, and waits until each is ready. They are
// stopped on clean-up.
func StartPipeline(ctx context.Context, tb TB, infra Infra, opts PipelineOptions) *Pipeline {
	tb.Helper()
	want := map[string]bool{}
	names := opts.Services
	if names == nil {
		names = slices.Collect(maps.Keys(ServicePackages))
	}
	for _, name := range names {
		if _, ok := LookupService(name); !ok {
			tb.Fatalf("start pipeline: unknown service %q in PipelineOptions.Services", name)
		}
		want[name] = true
	}
	for name := range opts.Env {
		if _, ok := LookupService(name); !ok {
			tb.Fatalf("start pipeline: unknown service %q in PipelineOptions.Env", name)
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true})
	tb.Cleanup(func() { _ = rdb.Close() })
	p := &Pipeline{Redis: rdb, Streams: NewPipelineStreams(), services: map[string]*Service{}}
	start := func(spec ServiceSpec) *Service {
		spec.Infra = infra
		spec.Streams = p.Streams
		spec.Env = opts.Env[spec.Name]
		if opts.OTLPEndpoint != "" {
			env := OTLPEnv(opts.OTLPEndpoint, false)
			maps.Copy(env, opts.Env[spec.Name])
			spec.Env = env
		}
		s := StartService(ctx, tb, spec)
		p.services[spec.Name] = s
		return s
	}
	if want["userservice"] {
		s := start(ServiceSpec{Name: "userservice"})
		p.User, p.UserURL = s.Process, s.URL
	}
	if want["mail"] {
		s := start(ServiceSpec{Name: "mail", SMTPAddr: opts.SMTPAddr})
		p.Mail, p.MailURL = s.Process, s.URL
	}
	if want["notification"] {
		wait := WaitReady
		if p.UserURL == "" {
			wait = WaitHealthy
		}
		s := start(ServiceSpec{Name: "notification", UserURL: p.UserURL, AdminEmails: opts.AdminEmails, Wait: wait})
		p.Notification, p.NotificationURL = s.Process, s.URL
	}
	if want["rtmanager"] {
		// A fresh network and state root, unless opts.Env names them.
		s := start(ServiceSpec{Name: "rtmanager"})
		p.RTManager, p.RTManagerURL = s.Process, s.URL
		p.DockerNetwork, p.StateRoot = s.DockerNetwork, s.StateRoot
	}
	return p
}

// DumpStreams renders every stream of the pipeline, for a failed spec's report.
func (p *Pipeline) DumpStreams(ctx context.Context) string {
	return p.DumpStreamsSince(ctx, time.Time{})
}

// DumpStreamsSince renders the entries every stream of the pipeline received
// at or after since: on a pipeline that specs share, a failed spec's report
// then shows what happened while it ran, not the whole run. Entry IDs are
// Redis's millisecond clock, so the cut needs no clock of the pipeline's.
func (p *Pipeline) DumpStreamsSince(ctx context.Context, since time.Time) string {
	start := "-"
	if !since.IsZero() {
		start = fmt.Sprintf("%d-0", since.UnixMilli())
	}
	var b strings.Builder
	for _, name := range p.Streams.All() {
		entries, err := p.Redis.XRange(ctx, name, start, "+").Result()
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
	return p.publish(ctx, p.Streams.StartJobs, fields, "requested_at_ms")
}

// PublishStopJob appends a stop job for gameID.
func (p *Pipeline) PublishStopJob(ctx context.Context, gameID string) (string, error) {
	return p.publish(ctx, p.Streams.StopJobs, map[string]string{"game_id": gameID}, "requested_at_ms")
}

// Publish appends an entry with exactly fields to stream — any stream,
// one of another service's too — and returns its ID.
func (p *Pipeline) Publish(ctx context.Context, stream string, fields map[string]string) (string, error) {
	return p.publish(ctx, stream, fields, "")
}

// PublishAll appends the entries to stream in one round trip, as a burst a
// consumer finds all in flight at once, and returns their IDs in order. It
// tells OnPublish of each.
func (p *Pipeline) PublishAll(ctx context.Context, stream string, entries []map[string]string) ([]string, error) {
	pipe := p.Redis.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i, fields := range entries {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: streamValues(fields)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("publish %d entries to %s: %w", len(entries), stream, err)
	}
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = c.Val()
		if p.OnPublish != nil {
			p.OnPublish(stream, ids[i], entries[i])
		}
	}
	return ids, nil
}

// publish appends fields to stream, with stampField set to now (Unix
// milliseconds) when it is named and absent, and tells OnPublish.
func (p *Pipeline) publish(ctx context.Context, stream string, fields map[string]string, stampField string) (string, error) {
	fields = maps.Clone(fields)
	if fields == nil {
		fields = map[string]string{}
	}
	if _, ok := fields[stampField]; stampField != "" && !ok {
		fields[stampField] = fmt.Sprint(time.Now().UnixMilli())
	}
	id, err := p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: streamValues(fields)}).Result()
	if err == nil && p.OnPublish != nil {
		p.OnPublish(stream, id, fields)
	}
	return id, err
}

// streamValues are fields as go-redis takes an entry's values.
func streamValues(fields map[string]string) map[string]any {
	values := make(map[string]any, len(fields))
	for k, v := range fields {
		values[k] = v
	}
	return values
}
