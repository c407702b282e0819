package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// SuiteConfigFile is the suite configuration file's name at the repository
// root. Ginkgo itself reads no configuration file; this one is read by the
// harness (images, waits, service overrides) and by harness/cmd/suiteflags
// (the ginkgo command line of each profile).
const SuiteConfigFile = "ginkgo.yml"

// Environment variables that override the suite configuration. A machine that
// can pull may point the image variables at the official images.
const (
	EnvSuiteConfig   = "GALAXY_SUITE_CONFIG"   // path of another suite configuration file
	EnvRedisImage    = "GALAXY_REDIS_IMAGE"    // overrides images.redis
	EnvPostgresImage = "GALAXY_POSTGRES_IMAGE" // overrides images.postgres
)

// Services the harness knows, by binary name. The keys of `services:` in the
// suite configuration must be among them, so a misspelt service is an error
// rather than an override that silently applies to nothing.
var knownServices = []string{"mail", "notification", "rtmanager", "userservice"}

// SuiteConfig is ginkgo.yml. Every key is documented in docs/harness.md.
type SuiteConfig struct {
	Images     ImagesConfig       `yaml:"images"`
	Eventually EventuallyConfig   `yaml:"eventually"`
	Timeouts   TimeoutsConfig     `yaml:"timeouts"`
	Services   map[string]EnvMap  `yaml:"services"`
	Profiles   map[string]Profile `yaml:"profiles"`
	Target     TargetConfig       `yaml:"target"`
}

// EnvMap is a set of environment variables, name to value.
type EnvMap map[string]string

// ImagesConfig names the container images of the shared dependencies.
type ImagesConfig struct {
	Redis    string `yaml:"redis"`
	Postgres string `yaml:"postgres"`
}

// EventuallyConfig holds Gomega's suite-wide defaults (ConfigureGomega).
// Gomega's own defaults (1s / 10ms) are too short for a pipeline of four
// processes and are the most common cause of flaky Eventually assertions.
type EventuallyConfig struct {
	Timeout              time.Duration `yaml:"timeout"`
	Polling              time.Duration `yaml:"polling"`
	ConsistentlyDuration time.Duration `yaml:"consistently_duration"`
	ConsistentlyPolling  time.Duration `yaml:"consistently_polling"`
}

// TimeoutsConfig bounds the harness's own waits.
type TimeoutsConfig struct {
	ContainerStart time.Duration `yaml:"container_start"` // a container's readiness (log line and port)
	ProcessReady   time.Duration `yaml:"process_ready"`   // WaitForHTTPStatus
	ProcessStop    time.Duration `yaml:"process_stop"`    // SIGTERM grace before SIGKILL (Process.Stop)
}

// Profile is one named set of ginkgo command-line settings; Flags turns it
// into arguments. Zero values mean "do not pass the flag" (ginkgo's default).
type Profile struct {
	Procs                int           `yaml:"procs"`
	LabelFilter          string        `yaml:"label_filter"`
	RandomizeAll         bool          `yaml:"randomize_all"`
	RandomizeSuites      bool          `yaml:"randomize_suites"`
	KeepGoing            bool          `yaml:"keep_going"`
	FailFast             bool          `yaml:"fail_fast"`
	FailOnPending        bool          `yaml:"fail_on_pending"`
	FailOnEmpty          bool          `yaml:"fail_on_empty"`
	RequireSuite         bool          `yaml:"require_suite"`
	Race                 bool          `yaml:"race"`
	PollProgressAfter    time.Duration `yaml:"poll_progress_after"`
	PollProgressInterval time.Duration `yaml:"poll_progress_interval"`
	Timeout              time.Duration `yaml:"timeout"`
	GracePeriod          time.Duration `yaml:"grace_period"`
	Verbosity            string        `yaml:"verbosity"`
	Trace                bool          `yaml:"trace"`
	ShowNodeEvents       bool          `yaml:"show_node_events"`
	NoColor              bool          `yaml:"no_color"`
	SilenceSkips         bool          `yaml:"silence_skips"`
	GithubOutput         bool          `yaml:"github_output"`
	JUnitReport          string        `yaml:"junit_report"`
	JSONReport           string        `yaml:"json_report"`
	OutputDir            string        `yaml:"output_dir"`
	KeepSeparateReports  bool          `yaml:"keep_separate_reports"`
}

// defaultSuiteConfig fills what ginkgo.yml leaves out.
func defaultSuiteConfig() SuiteConfig {
	return SuiteConfig{
		Images: ImagesConfig{
			Redis:    "galaxy-local/redis:7",
			Postgres: "galaxy-local/postgres:15",
		},
		Eventually: EventuallyConfig{
			Timeout:              30 * time.Second,
			Polling:              100 * time.Millisecond,
			ConsistentlyDuration: 2 * time.Second,
			ConsistentlyPolling:  100 * time.Millisecond,
		},
		Timeouts: TimeoutsConfig{
			ContainerStart: 60 * time.Second,
			ProcessReady:   30 * time.Second,
			ProcessStop:    15 * time.Second,
		},
		Target: TargetConfig{Mode: TargetHermetic},
	}
}

// LoadSuiteConfig reads the suite configuration: the file named by
// GALAXY_SUITE_CONFIG, else ginkgo.yml at the repository root, with the image
// environment overrides applied. The result is read once per process and
// cached, errors included.
func LoadSuiteConfig() (SuiteConfig, error) {
	return loadSuiteConfigOnce()
}

var loadSuiteConfigOnce = sync.OnceValues(func() (SuiteConfig, error) {
	path, err := SuiteConfigPath()
	if err != nil {
		return SuiteConfig{}, err
	}
	return LoadSuiteConfigFile(path)
})

// SuiteConfigPath is the file LoadSuiteConfig reads.
func SuiteConfigPath() (string, error) {
	if path := os.Getenv(EnvSuiteConfig); path != "" {
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, SuiteConfigFile), nil
}

// LoadSuiteConfigFile reads one suite configuration file (not cached), with
// the image and target environment overrides applied. The target section is
// checked after its overrides, since secrets and addresses may come only
// from the environment.
func LoadSuiteConfigFile(path string) (SuiteConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SuiteConfig{}, fmt.Errorf("suite config: %w", err)
	}
	cfg, err := ParseSuiteConfig(data)
	if err != nil {
		return SuiteConfig{}, fmt.Errorf("suite config %s: %w", path, err)
	}
	if v := os.Getenv(EnvRedisImage); v != "" {
		cfg.Images.Redis = v
	}
	if v := os.Getenv(EnvPostgresImage); v != "" {
		cfg.Images.Postgres = v
	}
	cfg.Target.applyEnv(os.Getenv)
	if err := cfg.Target.validate(); err != nil {
		return SuiteConfig{}, fmt.Errorf("suite config %s with the %s* environment: %w", path, EnvTargetPrefix, err)
	}
	return cfg, nil
}

// ParseSuiteConfig decodes and validates a suite configuration. Unknown keys
// are errors, so a misspelt setting fails loudly instead of being ignored.
func ParseSuiteConfig(data []byte) (SuiteConfig, error) {
	cfg := defaultSuiteConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return SuiteConfig{}, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return SuiteConfig{}, errors.New("more than one YAML document")
	}
	if err := cfg.validate(); err != nil {
		return SuiteConfig{}, err
	}
	return cfg, nil
}

func (c SuiteConfig) validate() error {
	var errs []error
	if c.Images.Redis == "" {
		errs = append(errs, errors.New("images.redis: empty"))
	}
	if c.Images.Postgres == "" {
		errs = append(errs, errors.New("images.postgres: empty"))
	}
	for key, d := range map[string]time.Duration{
		"eventually.timeout":               c.Eventually.Timeout,
		"eventually.polling":               c.Eventually.Polling,
		"eventually.consistently_duration": c.Eventually.ConsistentlyDuration,
		"eventually.consistently_polling":  c.Eventually.ConsistentlyPolling,
		"timeouts.container_start":         c.Timeouts.ContainerStart,
		"timeouts.process_ready":           c.Timeouts.ProcessReady,
		"timeouts.process_stop":            c.Timeouts.ProcessStop,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration, got %s", key, d))
		}
	}
	for name, env := range c.Services {
		if !slices.Contains(knownServices, name) {
			errs = append(errs, fmt.Errorf("services.%s: unknown service (known: %s)", name, strings.Join(knownServices, ", ")))
		}
		for k := range env {
			if k == "" || strings.ContainsAny(k, "= \t\n") {
				errs = append(errs, fmt.Errorf("services.%s: invalid variable name %q", name, k))
			}
		}
	}
	for name, p := range c.Profiles {
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("profiles.%s: %w", name, err))
		}
	}
	// Sorted, so the message is the same on every run.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// ServiceEnv returns the configured overrides of one service (nil if none).
func (c SuiteConfig) ServiceEnv(service string) EnvMap {
	return c.Services[service]
}

// Profile returns the named profile, or an error listing the known ones.
func (c SuiteConfig) Profile(name string) (Profile, error) {
	p, ok := c.Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(c.ProfileNames(), ", "))
	}
	return p, nil
}

// ProfileNames lists the profiles, sorted.
func (c SuiteConfig) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for name := range c.Profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// mustSuiteConfig is LoadSuiteConfig for helpers that take a TB.
func mustSuiteConfig(tb TB) SuiteConfig {
	tb.Helper()
	cfg, err := LoadSuiteConfig()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return cfg
}
