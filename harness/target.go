package harness

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The suite's targets (ginkgo.yml's target.mode).
const (
	// TargetHermetic: the suite starts everything it tests — Redis,
	// PostgreSQL, the registry, the four services — and removes it after.
	TargetHermetic = "hermetic"
	// TargetDeployed: the suite tests a deployment that is already
	// running, named by the target section, and starts none of it.
	TargetDeployed = "deployed"
)

// EnvTargetPrefix starts every variable that overrides a key of the target
// section (TargetConfig.applyEnv lists them): GALAXY_TARGET_MODE,
// GALAXY_TARGET_REDIS_PASSWORD, GALAXY_TARGET_MAIL_TOKEN, ... Secrets belong
// there rather than in ginkgo.yml.
const EnvTargetPrefix = "GALAXY_TARGET_"

// TargetConfig is ginkgo.yml's target section: what the suite runs against.
// In deployed mode it describes the deployment — where its Redis and APIs
// are, the stream names it was configured with, its admin lists — so a spec
// knows what the deployment is to do without reading its configuration.
// docs/acceptance.md, "Running against a deployment".
type TargetConfig struct {
	Mode  string      `yaml:"mode"`
	Redis TargetRedis `yaml:"redis"`
	// Streams are the deployment's stream names; empty ones are the
	// contract's defaults.
	Streams TargetStreams `yaml:"streams"`
	// APIs are the four internal HTTP APIs, by service name.
	APIs map[string]TargetAPI `yaml:"apis"`
	// AdminEmails are Notification's admin lists, by notification type, as
	// the deployment's NOTIFICATION_ADMIN_EMAILS_<TYPE> set them.
	AdminEmails map[string]string `yaml:"admin_emails"`
	// AdminLocale is the deployment's NOTIFICATION_ADMIN_LOCALE (default en).
	AdminLocale string `yaml:"admin_locale"`
	// RTManagerInstance is the Runtime Manager's RTMANAGER_INSTANCE_ID,
	// which keys its intents.
	RTManagerInstance string `yaml:"rtmanager_instance"`
	// ImagePullPolicy is its RTMANAGER_IMAGE_PULL_POLICY.
	ImagePullPolicy string `yaml:"image_pull_policy"`
	// DockerHost is the daemon the Runtime Manager runs games on, which
	// the suite inspects (a game's containers) and pulls its game images
	// into; empty is DockerHost().
	DockerHost string `yaml:"docker_host"`
	// MailpitURL, when set, is the API of the Mailpit the deployment's
	// Mail sends to.
	MailpitURL string `yaml:"mailpit_url"`
}

// TargetRedis is the deployment's Redis.
type TargetRedis struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
}

// TargetStreams are the deployment's stream names.
type TargetStreams struct {
	StartJobs    string `yaml:"start_jobs"`
	StopJobs     string `yaml:"stop_jobs"`
	JobResults   string `yaml:"job_results"`
	HealthEvents string `yaml:"health_events"`
	Intents      string `yaml:"intents"`
	MailCommands string `yaml:"mail_commands"`
}

// TargetAPI is one service's internal API.
type TargetAPI struct {
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
}

// ContractStreams are the stream names of the contract, which a deployment
// uses unless configured otherwise.
var ContractStreams = PipelineStreams{
	StartJobs:    "runtime:start_jobs",
	StopJobs:     "runtime:stop_jobs",
	JobResults:   "runtime:job_results",
	HealthEvents: "runtime:health_events",
	Intents:      "notification:intents",
	MailCommands: "mail:delivery_commands",
}

// consumerGroups are the contract's consumer groups, by the stream the
// service reads: what a deployed pipeline waits for.
var consumerGroups = []string{"rtmanager", "notification", "mail"}

// Deployed says whether the suite tests a running deployment.
func (t TargetConfig) Deployed() bool { return t.Mode == TargetDeployed }

// PipelineStreams are the deployment's stream names.
func (t TargetConfig) PipelineStreams() PipelineStreams {
	s := ContractStreams
	for _, f := range []struct{ set, def *string }{
		{&t.Streams.StartJobs, &s.StartJobs}, {&t.Streams.StopJobs, &s.StopJobs},
		{&t.Streams.JobResults, &s.JobResults}, {&t.Streams.HealthEvents, &s.HealthEvents},
		{&t.Streams.Intents, &s.Intents}, {&t.Streams.MailCommands, &s.MailCommands},
	} {
		if *f.set != "" {
			*f.def = *f.set
		}
	}
	return s
}

// applyEnv overrides the section's keys from GALAXY_TARGET_* variables:
// MODE, REDIS_ADDR, REDIS_PASSWORD, STREAM_<NAME> (START_JOBS, ...),
// <SERVICE>_URL and <SERVICE>_TOKEN (USERSERVICE, MAIL, NOTIFICATION,
// RTMANAGER), ADMIN_EMAILS_<TYPE> (the type as Notification's variable
// spells it), ADMIN_LOCALE, RTMANAGER_INSTANCE, IMAGE_PULL_POLICY,
// DOCKER_HOST, MAILPIT_URL.
func (t *TargetConfig) applyEnv(getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(EnvTargetPrefix + name); v != "" {
			*dst = v
		}
	}
	set(&t.Mode, "MODE")
	set(&t.Redis.Addr, "REDIS_ADDR")
	set(&t.Redis.Password, "REDIS_PASSWORD")
	set(&t.Streams.StartJobs, "STREAM_START_JOBS")
	set(&t.Streams.StopJobs, "STREAM_STOP_JOBS")
	set(&t.Streams.JobResults, "STREAM_JOB_RESULTS")
	set(&t.Streams.HealthEvents, "STREAM_HEALTH_EVENTS")
	set(&t.Streams.Intents, "STREAM_INTENTS")
	set(&t.Streams.MailCommands, "STREAM_MAIL_COMMANDS")
	t.APIs = maps.Clone(t.APIs)
	if t.APIs == nil {
		t.APIs = map[string]TargetAPI{}
	}
	for _, name := range knownServices {
		api := t.APIs[name]
		set(&api.URL, strings.ToUpper(name)+"_URL")
		set(&api.Token, strings.ToUpper(name)+"_TOKEN")
		if api != (TargetAPI{}) {
			t.APIs[name] = api
		}
	}
	t.AdminEmails = maps.Clone(t.AdminEmails)
	if t.AdminEmails == nil {
		t.AdminEmails = map[string]string{}
	}
	for _, notificationType := range slices.Sorted(maps.Keys(runtimeFailureTypes(t.AdminEmails))) {
		list := t.AdminEmails[notificationType]
		set(&list, strings.TrimPrefix(AdminEmailsVariable(notificationType), "NOTIFICATION_"))
		if list != "" {
			t.AdminEmails[notificationType] = list
		}
	}
	set(&t.AdminLocale, "ADMIN_LOCALE")
	set(&t.RTManagerInstance, "RTMANAGER_INSTANCE")
	set(&t.ImagePullPolicy, "IMAGE_PULL_POLICY")
	set(&t.DockerHost, "DOCKER_HOST")
	set(&t.MailpitURL, "MAILPIT_URL")
}

// runtimeFailureTypes are the types whose admin list an environment
// variable may set: those the section lists, and the Runtime Manager's
// three, which the suite's failure specs need.
func runtimeFailureTypes(lists map[string]string) map[string]bool {
	out := map[string]bool{
		"runtime.image_pull_failed":      true,
		"runtime.container_start_failed": true,
		"runtime.start_config_invalid":   true,
	}
	for k := range lists {
		out[k] = true
	}
	return out
}

// validate checks the section; in deployed mode everything a spec reaches
// must be named.
func (t TargetConfig) validate() error {
	var errs []error
	switch t.Mode {
	case TargetHermetic:
		return nil
	case TargetDeployed:
	default:
		return fmt.Errorf("target.mode: %q is neither %s nor %s", t.Mode, TargetHermetic, TargetDeployed)
	}
	if t.Redis.Addr == "" {
		errs = append(errs, errors.New("target.redis.addr: empty (GALAXY_TARGET_REDIS_ADDR)"))
	}
	for _, name := range knownServices {
		raw := t.APIs[name].URL
		u, err := url.Parse(raw)
		if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("target.apis.%s.url: %q is not an http(s) URL (%s%s_URL)", name, raw, EnvTargetPrefix, strings.ToUpper(name)))
		}
	}
	for name := range t.APIs {
		if !slices.Contains(knownServices, name) {
			errs = append(errs, fmt.Errorf("target.apis.%s: unknown service (known: %s)", name, strings.Join(knownServices, ", ")))
		}
	}
	if !slices.Contains([]string{"always", "if_missing", "never"}, t.ImagePullPolicy) {
		errs = append(errs, fmt.Errorf("target.image_pull_policy: %q is not always, if_missing or never", t.ImagePullPolicy))
	}
	if t.RTManagerInstance == "" {
		errs = append(errs, errors.New("target.rtmanager_instance: empty: the Runtime Manager's RTMANAGER_INSTANCE_ID keys its intents"))
	}
	if t.MailpitURL != "" {
		if u, err := url.Parse(t.MailpitURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("target.mailpit_url: %q is not a URL", t.MailpitURL))
		}
	}
	return errors.Join(errs...)
}

// OpenTarget returns the deployment t names as a Pipeline: a Redis client,
// its stream names, each API's URL and token. It starts nothing and has no
// processes; Settled waits only for the contract's consumer groups, since
// other readers of a deployment's streams (a lobby reading job results) are
// not the pipeline's. The Redis client is closed on tb's clean-up.
func OpenTarget(tb TB, t TargetConfig) *Pipeline {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: t.Redis.Addr, Password: t.Redis.Password, Protocol: 2, DisableIdentity: true})
	tb.Cleanup(func() { _ = rdb.Close() })
	return &Pipeline{
		Redis:           rdb,
		Streams:         t.PipelineStreams(),
		UserURL:         t.APIs["userservice"].URL,
		MailURL:         t.APIs["mail"].URL,
		NotificationURL: t.APIs["notification"].URL,
		RTManagerURL:    t.APIs["rtmanager"].URL,
		Tokens: APITokens{
			User: t.APIs["userservice"].Token, Mail: t.APIs["mail"].Token,
			Notification: t.APIs["notification"].Token, RTManager: t.APIs["rtmanager"].Token,
		},
		Deployed: true,
		groups:   consumerGroups,
		services: map[string]*Service{},
	}
}

// AdminLocaleOrDefault is the deployment's admin locale, en when unset.
func (t TargetConfig) AdminLocaleOrDefault() string {
	if t.AdminLocale == "" {
		return "en"
	}
	return t.AdminLocale
}
