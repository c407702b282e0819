package harness

import (
	"context"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServiceDef is what the harness knows about one of the four services: how
// to build it and the environment every test starts it with.
type ServiceDef struct {
	// Name is the binary's and the process's name: "mail".
	Name string
	// Package is the main package, relative to the repository root.
	Package string
	// Prefix starts every variable of the service: "MAIL_".
	Prefix string

	// base holds the service's own test-friendly defaults; BaseEnv adds
	// the ones every service shares.
	base map[string]string
	// checkoutPaths are variables holding paths relative to the
	// repository root. The services resolve relative paths against their
	// working directory, which is a test's package directory.
	checkoutPaths map[string]string
	// redis is false for the User Service, which has no Redis to point at.
	redis bool
	// wire sets the variables that tie one instance to its dependencies
	// and its streams.
	wire func(w *wiring)
}

// The four services, in the order a pipeline starts them: each one's
// dependencies come before it.
var serviceDefs = []ServiceDef{
	{
		Name:    "userservice",
		Package: "./user/cmd/userservice",
		Prefix:  "USERSERVICE_",
		wire:    func(*wiring) {},
	},
	{
		Name:    "mail",
		Package: "./mail/cmd/mail",
		Prefix:  "MAIL_",
		redis:   true,
		checkoutPaths: map[string]string{
			"MAIL_TEMPLATE_DIR": "mail/templates",
		},
		base: map[string]string{
			"MAIL_SMTP_MODE":            "stub",
			"MAIL_STREAM_BLOCK_TIMEOUT": "100ms",
			// Short, so a spec that resends while a dependency is down
			// gets its answer quickly.
			"MAIL_OPERATOR_REQUEST_TIMEOUT": "1s",
		},
		wire: func(w *wiring) {
			w.stream("MAIL_COMMANDS_STREAM", &w.streams.MailCommands)
			if w.spec.SMTPAddr != "" {
				w.env["MAIL_SMTP_MODE"] = "smtp"
				w.env["MAIL_SMTP_ADDR"] = w.spec.SMTPAddr
				w.env["MAIL_SMTP_FROM"] = DefaultSMTPFrom
			}
		},
	},
	{
		Name:    "notification",
		Package: "./notification/cmd/notification",
		Prefix:  "NOTIFICATION_",
		redis:   true,
		base: map[string]string{
			"NOTIFICATION_USER_SERVICE_TIMEOUT": "1s",
			// A failed hand-off is retried within a spec's patience.
			"NOTIFICATION_ROUTE_BACKOFF_MIN": "100ms",
			"NOTIFICATION_ROUTE_BACKOFF_MAX": "100ms",
		},
		wire: func(w *wiring) {
			w.stream("NOTIFICATION_INTENTS_STREAM", &w.streams.Intents)
			w.stream("NOTIFICATION_MAIL_COMMANDS_STREAM", &w.streams.MailCommands)
			userURL := w.spec.UserURL
			if userURL == "" {
				// Nothing listens there: user routes fail fast, and
				// /readyz reports the User Service down.
				userURL = "http://127.0.0.1:1"
			}
			w.env["NOTIFICATION_USER_SERVICE_BASE_URL"] = userURL
			for notificationType, list := range w.spec.AdminEmails {
				w.env[AdminEmailsVariable(notificationType)] = list
			}
		},
	},
	{
		Name:    "rtmanager",
		Package: "./rtmanager/cmd/rtmanager",
		Prefix:  "RTMANAGER_",
		redis:   true,
		base: map[string]string{
			// No Lobby runs; the lookup is best-effort and must not abort
			// starts, so it points at a port nothing listens on.
			"RTMANAGER_LOBBY_INTERNAL_BASE_URL":  "http://127.0.0.1:1",
			"RTMANAGER_LOBBY_INTERNAL_TIMEOUT":   "200ms",
			"RTMANAGER_STREAM_BLOCK_TIMEOUT":     "200ms",
			"RTMANAGER_RECONCILE_INTERVAL":       "5s",
			"RTMANAGER_CLEANUP_INTERVAL":         "5s",
			"RTMANAGER_INSPECT_INTERVAL":         "1s",
			"RTMANAGER_PROBE_INTERVAL":           "1s",
			"RTMANAGER_PROBE_TIMEOUT":            "1s",
			"RTMANAGER_PROBE_FAILURES_THRESHOLD": "3",
			"RTMANAGER_GAME_LEASE_TTL_SECONDS":   "30",
			// Test images are pushed to the loopback registry once; pulling
			// them again for every start would only slow specs down.
			"RTMANAGER_IMAGE_PULL_POLICY": "if_missing",
		},
		wire: func(w *wiring) {
			w.stream("RTMANAGER_REDIS_START_JOBS_STREAM", &w.streams.StartJobs)
			w.stream("RTMANAGER_REDIS_STOP_JOBS_STREAM", &w.streams.StopJobs)
			w.stream("RTMANAGER_REDIS_JOB_RESULTS_STREAM", &w.streams.JobResults)
			w.stream("RTMANAGER_REDIS_HEALTH_EVENTS_STREAM", &w.streams.HealthEvents)
			w.stream("RTMANAGER_NOTIFICATION_INTENTS_STREAM", &w.streams.Intents)
			dockerHost := w.spec.Infra.DockerHost
			if dockerHost == "" {
				dockerHost = DockerHost()
			}
			w.env["RTMANAGER_DOCKER_HOST"] = dockerHost
			w.env["RTMANAGER_INSTANCE_ID"] = "rtm-" + w.suffix
			// Creating a network takes a Docker round trip or two: only
			// when the caller has none to give.
			if !w.overridden("RTMANAGER_DOCKER_NETWORK") {
				network := w.spec.DockerNetwork
				if network == "" {
					network = EnsureDockerNetwork(w.ctx, w.tb)
				}
				w.env["RTMANAGER_DOCKER_NETWORK"] = network
			}
			if !w.overridden("RTMANAGER_GAME_STATE_ROOT") {
				root := w.spec.StateRoot
				if root == "" {
					root = w.tb.TempDir()
				}
				w.env["RTMANAGER_GAME_STATE_ROOT"] = root
			}
		},
	},
}

// DefaultSMTPFrom is Mail's sender when ServiceSpec.SMTPAddr (or
// PipelineOptions.SMTPAddr) puts it in smtp mode.
const DefaultSMTPFrom = "Galaxy Mail <mail@galaxy.example>"

// ServicePackages are the main packages of the four services, by binary name.
var ServicePackages = func() map[string]string {
	m := make(map[string]string, len(serviceDefs))
	for _, d := range serviceDefs {
		m[d.Name] = d.Package
	}
	return m
}()

// ServiceEnvPrefixes are the environment prefixes of the four services.
// StartProcess drops every inherited variable with one of them, so a
// developer's shell cannot leak configuration into a test.
var ServiceEnvPrefixes = func() []string {
	out := make([]string, 0, len(serviceDefs))
	for _, d := range serviceDefs {
		out = append(out, d.Prefix)
	}
	return out
}()

// ServicePackagePaths returns the values of ServicePackages, sorted.
func ServicePackagePaths() []string {
	return slices.Sorted(maps.Values(ServicePackages))
}

// ServiceDefs returns the four services in dependency order: User Service,
// Mail, Notification, Runtime Manager.
func ServiceDefs() []ServiceDef { return slices.Clone(serviceDefs) }

// LookupService returns the service called name ("userservice", "mail",
// "notification", "rtmanager").
func LookupService(name string) (ServiceDef, bool) {
	for _, d := range serviceDefs {
		if d.Name == name {
			return d, true
		}
	}
	return ServiceDef{}, false
}

// ServiceOfVariable returns the service whose prefix the environment
// variable name has.
func ServiceOfVariable(name string) (ServiceDef, bool) {
	for _, d := range serviceDefs {
		if strings.HasPrefix(name, d.Prefix) {
			return d, true
		}
	}
	return ServiceDef{}, false
}

// BaseEnv is the environment every test starts the service with before its
// own wiring and overrides: the variables all services share (log level,
// shutdown budget, a short stream claim idle so a killed consumer's entries
// are taken over within seconds, no OpenTelemetry exporters) and the
// service's own (short block timeouts and intervals, Mail's templates of this
// checkout and stub SMTP, ...). Values are short where the service's
// defaults would make a spec wait, and otherwise the service's defaults.
func (d ServiceDef) BaseEnv(tb TB) map[string]string {
	tb.Helper()
	p := d.Prefix
	env := map[string]string{
		p + "LOG_LEVEL":         "info",
		p + "SHUTDOWN_TIMEOUT":  "5s",
		p + "STREAM_CLAIM_IDLE": "2s",
		// No collector runs; an exporter would only log failed exports.
		"OTEL_TRACES_EXPORTER":  "none",
		"OTEL_METRICS_EXPORTER": "none",
	}
	maps.Copy(env, d.base)
	for k, rel := range d.checkoutPaths {
		env[k] = filepath.Join(mustRepoRoot(tb), filepath.FromSlash(rel))
	}
	return env
}

// Readiness is what StartService waits for before it returns.
type Readiness int

const (
	// WaitReady waits until GET /readyz answers 200: every dependency of
	// the service answers.
	WaitReady Readiness = iota
	// WaitHealthy waits until GET /healthz answers 200: the process
	// listens, though a dependency may be down (Notification without a
	// User Service, the Runtime Manager without its network).
	WaitHealthy
	// WaitNone returns as soon as the process is started: for a process
	// expected to exit (bad configuration) or listening where the harness
	// cannot know.
	WaitNone
)

// ServiceSpec says which service StartService starts and against what. Only
// Name and Infra are required; every other field has a per-instance
// default.
type ServiceSpec struct {
	// Name is the service: "userservice", "mail", "notification" or
	// "rtmanager".
	Name string
	// Infra gives the Redis (RedisAddr), the PostgreSQL on which the
	// instance's database is created (PostgresAdminDSN), the binary
	// (Binaries[Name]) and, for the Runtime Manager, the Docker daemon
	// (DockerHost; empty means DockerHost()). A test that started only
	// some of these fills only those fields.
	Infra Infra
	// Binary is the executable; empty means Infra.Binaries[Name].
	Binary string
	// ProcessName names the process in logs and reports; empty means Name.
	ProcessName string

	// Streams are the stream names; each empty one gets a fresh name, so
	// services share a stream only when given the same name.
	Streams PipelineStreams
	// DSN is <P>_POSTGRES_DSN; empty means a fresh database on
	// Infra.PostgresAdminDSN.
	DSN string

	// SMTPAddr, for Mail, is the SMTP server it sends to (MAIL_SMTP_MODE
	// smtp, MAIL_SMTP_FROM DefaultSMTPFrom); empty means the stub.
	SMTPAddr string
	// UserURL, for Notification, is the User Service's base URL; empty
	// means an address nothing listens on (its /readyz then reports the
	// User Service down: use WaitHealthy).
	UserURL string
	// AdminEmails, for Notification, maps a notification type to its
	// comma-separated admin list (AdminEmailsVariable).
	AdminEmails map[string]string
	// DockerNetwork, for the Runtime Manager, is the game network; empty
	// means a fresh one (EnsureDockerNetwork).
	DockerNetwork string
	// StateRoot, for the Runtime Manager, is the games' state directory;
	// empty means a directory of the TB's.
	StateRoot string

	// Env is set last, over the base environment and the wiring: the
	// caller's word on any variable.
	Env map[string]string
	// Unset names variables removed after Env, so the service's own
	// default applies (<P>_INTERNAL_HTTP_ADDR to check the default port:
	// with WaitNone, as the harness then does not know the address).
	Unset []string
	// Wait is what StartService waits for; the zero value is WaitReady.
	Wait Readiness
}

// Service is a service process started by StartService.
type Service struct {
	Def     ServiceDef
	Process *Process
	// URL is the internal HTTP API's base URL, "http://127.0.0.1:port";
	// empty when <P>_INTERNAL_HTTP_ADDR was unset.
	URL string
	// DSN is the service's <P>_POSTGRES_DSN.
	DSN string
	// Streams are the names of the streams the service uses; the others
	// are empty (Mail has only MailCommands).
	Streams PipelineStreams
	// DockerNetwork and StateRoot are the Runtime Manager's.
	DockerNetwork, StateRoot string

	wait     Readiness
	replicas int
}

// Var returns the value of the service's variable <P>_suffix as the process
// got it: s.Var("STREAM_CONSUMER").
func (s *Service) Var(suffix string) string { return s.Process.Env()[s.Def.Prefix+suffix] }

// Env returns the variables the process was started with (see Process.Env).
func (s *Service) Env() map[string]string { return s.Process.Env() }

// wiring is what a ServiceDef's wire function works with.
type wiring struct {
	ctx     context.Context
	tb      TB
	spec    ServiceSpec
	suffix  string
	env     map[string]string
	streams *PipelineStreams
}

// stream sets variable to *name, giving *name a fresh value if it is empty.
func (w *wiring) stream(variable string, name *string) {
	if *name == "" {
		*name = streamPrefix(variable) + ":" + w.suffix
	}
	w.env[variable] = *name
}

func (w *wiring) overridden(variable string) bool {
	_, ok := w.spec.Env[variable]
	return ok
}

// streamPrefix is the contract's default name of the stream variable sets
// (CONTRACTS §3), which per-instance names extend.
func streamPrefix(variable string) string {
	switch variable {
	case "RTMANAGER_REDIS_START_JOBS_STREAM":
		return "runtime:start_jobs"
	case "RTMANAGER_REDIS_STOP_JOBS_STREAM":
		return "runtime:stop_jobs"
	case "RTMANAGER_REDIS_JOB_RESULTS_STREAM":
		return "runtime:job_results"
	case "RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":
		return "runtime:health_events"
	case "RTMANAGER_NOTIFICATION_INTENTS_STREAM", "NOTIFICATION_INTENTS_STREAM":
		return "notification:intents"
	default: // MAIL_COMMANDS_STREAM, NOTIFICATION_MAIL_COMMANDS_STREAM
		return "mail:delivery_commands"
	}
}

// StartService starts one service process: the base environment
// (ServiceDef.BaseEnv), then what ties this instance to its dependencies —
// <P>_REDIS_ADDR, a fresh database, a free <P>_INTERNAL_HTTP_ADDR, a
// consumer name, the streams and the service's own wiring (ServiceSpec) —
// then spec.Env, minus spec.Unset. It waits as spec.Wait says and fails tb
// if the service does not get there. The process is stopped on clean-up.
//
// ctx bounds the start only (the database, the network, the wait).
func StartService(ctx context.Context, tb TB, spec ServiceSpec) *Service {
	tb.Helper()
	began := time.Now()
	def, ok := LookupService(spec.Name)
	if !ok {
		tb.Fatalf("start service %q: unknown service (known: %v)", spec.Name, slices.Sorted(maps.Keys(ServicePackages)))
	}
	binary := spec.Binary
	if binary == "" {
		binary = spec.Infra.Binaries[def.Name]
	}
	if binary == "" {
		tb.Fatalf("start service %s: no binary: set ServiceSpec.Binary or Infra.Binaries[%q] (BuildBinaries(tb, %q))", def.Name, def.Name, def.Package)
	}
	procName := spec.ProcessName
	if procName == "" {
		procName = def.Name
	}
	p := def.Prefix
	suffix := UniqueSuffix()
	streams := spec.Streams
	w := &wiring{ctx: ctx, tb: tb, spec: spec, suffix: suffix, env: def.BaseEnv(tb), streams: &streams}

	w.env[p+"INTERNAL_HTTP_ADDR"] = FreeTCPAddress(tb)
	// A stable name per instance: a restarted process (Process.Restart)
	// takes up its own pending entries at once.
	w.env[p+"STREAM_CONSUMER"] = procName + "-" + suffix
	if def.redis && !w.overridden(p+"REDIS_ADDR") {
		if spec.Infra.RedisAddr == "" {
			// The service's default would be whatever Redis runs on this
			// machine's standard port.
			tb.Fatalf("start service %s: no Redis: set Infra.RedisAddr or Env[%q]", def.Name, p+"REDIS_ADDR")
		}
		w.env[p+"REDIS_ADDR"] = spec.Infra.RedisAddr
	}
	if !w.overridden(p + "POSTGRES_DSN") {
		dsn := spec.DSN
		if dsn == "" {
			if spec.Infra.PostgresAdminDSN == "" {
				tb.Fatalf("start service %s: no PostgreSQL: set Infra.PostgresAdminDSN, DSN or Env[%q]", def.Name, p+"POSTGRES_DSN")
			}
			var err error
			if dsn, err = CreateDatabase(ctx, spec.Infra.PostgresAdminDSN, def.Name); err != nil {
				tb.Fatalf("start service %s: %v", def.Name, err)
			}
		}
		w.env[p+"POSTGRES_DSN"] = dsn
	}
	def.wire(w)
	maps.Copy(w.env, spec.Env)
	for _, k := range spec.Unset {
		delete(w.env, k)
	}

	s := newService(def, StartProcess(tb, procName, binary, w.env), spec.Wait)
	s.await(ctx, tb)
	// In the log (shown with -v or on failure), so a slow spec says whether
	// its time went into starting services.
	tb.Logf("started %s at %s in %s", procName, s.URL, time.Since(began).Round(time.Millisecond))
	return s
}

// newService reads what the process was actually given (the overrides and
// ginkgo.yml's services.<name> included).
func newService(def ServiceDef, proc *Process, wait Readiness) *Service {
	env := proc.Env()
	s := &Service{Def: def, Process: proc, wait: wait, DSN: env[def.Prefix+"POSTGRES_DSN"]}
	if addr := env[def.Prefix+"INTERNAL_HTTP_ADDR"]; addr != "" {
		s.URL = "http://" + addr
	}
	// Only the variables the service reads are filled; re-wiring with
	// empty names would invent streams it does not use.
	read := map[string]*string{
		"MAIL_COMMANDS_STREAM":                  &s.Streams.MailCommands,
		"NOTIFICATION_INTENTS_STREAM":           &s.Streams.Intents,
		"NOTIFICATION_MAIL_COMMANDS_STREAM":     &s.Streams.MailCommands,
		"RTMANAGER_REDIS_START_JOBS_STREAM":     &s.Streams.StartJobs,
		"RTMANAGER_REDIS_STOP_JOBS_STREAM":      &s.Streams.StopJobs,
		"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    &s.Streams.JobResults,
		"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  &s.Streams.HealthEvents,
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": &s.Streams.Intents,
		"RTMANAGER_DOCKER_NETWORK":              &s.DockerNetwork,
		"RTMANAGER_GAME_STATE_ROOT":             &s.StateRoot,
	}
	for k, dst := range read {
		if v, ok := env[k]; ok {
			*dst = v
		}
	}
	return s
}

// await waits as s.wait says.
func (s *Service) await(ctx context.Context, tb TB) {
	tb.Helper()
	path := ""
	switch s.wait {
	case WaitReady:
		path = "/readyz"
	case WaitHealthy:
		path = "/healthz"
	case WaitNone:
		return
	default:
		tb.Fatalf("start service %s: unknown Readiness %d", s.Def.Name, s.wait)
	}
	if s.URL == "" {
		tb.Fatalf("start service %s: %sINTERNAL_HTTP_ADDR is unset, so %s cannot be polled: use WaitNone", s.Def.Name, s.Def.Prefix, path)
	}
	budget := mustSuiteConfig(tb).Timeouts.ProcessReady
	if err := waitForHTTPStatus(ctx, s.Process, s.URL+path, http.StatusOK, budget); err != nil {
		tb.Fatalf("start service %s: %v\n%s log (last 100 lines):\n%s", s.Def.Name, err, s.Process.Name(), s.Process.LogTail(100))
	}
}

// Replica starts another process of the same service with s's environment —
// the same database, streams, Redis and, for the Runtime Manager, instance
// ID, network and state root, as a second replica of a deployment would
// have — but its own HTTP address and consumer name, plus env. It is named
// after s ("notification-2", "notification-3", ...) and waited for as s was.
// Replica is not safe for concurrent use on one s.
func (s *Service) Replica(ctx context.Context, tb TB, env map[string]string) *Service {
	tb.Helper()
	s.replicas++
	n := strconv.Itoa(s.replicas + 1)
	p := s.Def.Prefix
	e := s.Process.Env()
	e[p+"INTERNAL_HTTP_ADDR"] = FreeTCPAddress(tb)
	if c := e[p+"STREAM_CONSUMER"]; c != "" {
		e[p+"STREAM_CONSUMER"] = c + "-" + n
	}
	maps.Copy(e, env)
	r := newService(s.Def, StartProcess(tb, s.Process.Name()+"-"+n, s.Process.Binary(), e), s.wait)
	r.await(ctx, tb)
	return r
}
