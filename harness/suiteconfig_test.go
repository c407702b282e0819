package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSuiteConfigDefaults(t *testing.T) {
	cfg, err := ParseSuiteConfig([]byte("profiles:\n  default: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images.Redis != "galaxy-local/redis:7" || cfg.Images.Postgres != "galaxy-local/postgres:15" {
		t.Errorf("default images: %+v", cfg.Images)
	}
	if cfg.Eventually.Timeout != 30*time.Second || cfg.Timeouts.ProcessStop != 15*time.Second {
		t.Errorf("default durations: %+v %+v", cfg.Eventually, cfg.Timeouts)
	}
	if got := cfg.ProfileNames(); !slices.Equal(got, []string{"default"}) {
		t.Errorf("profiles: %v", got)
	}
}

func TestParseSuiteConfigEmptyFile(t *testing.T) {
	if _, err := ParseSuiteConfig(nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestParseSuiteConfigRejects(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown top-level key": {"imagez:\n  redis: x\n", "field imagez not found"},
		"unknown nested key":    {"eventually:\n  timout: 1s\n", "field timout not found"},
		"unknown profile key":   {"profiles:\n  ci:\n    flake_attempts: 3\n", "field flake_attempts not found"},
		"bad duration":          {"eventually:\n  timeout: soon\n", "soon"},
		"zero duration":         {"timeouts:\n  process_ready: 0s\n", "timeouts.process_ready: must be a positive duration"},
		"unknown service":       {"services:\n  mailer:\n    MAIL_LOG_LEVEL: debug\n", "services.mailer: unknown service"},
		"bad variable name":     {"services:\n  mail:\n    \"A=B\": x\n", "invalid variable name"},
		"negative procs":        {"profiles:\n  ci:\n    procs: -1\n", "profiles.ci: procs"},
		"bad verbosity":         {"profiles:\n  ci:\n    verbosity: loud\n", "verbosity"},
		"empty image":           {"images:\n  redis: \"\"\n", "images.redis: empty"},
		"two documents":         {"images: {}\n---\nimages: {}\n", "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSuiteConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadSuiteConfigFileAppliesImageOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ginkgo.yml")
	if err := os.WriteFile(path, []byte("images:\n  redis: a/redis:1\n  postgres: a/postgres:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvRedisImage, "redis:7")
	cfg, err := LoadSuiteConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images.Redis != "redis:7" || cfg.Images.Postgres != "a/postgres:1" {
		t.Fatalf("images: %+v", cfg.Images)
	}
}

func TestLoadSuiteConfigFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ginkgo.yml")
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSuiteConfigFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("error %v, want one naming the file and the line", err)
	}
}

// The repository's own ginkgo.yml must load, and every profile the Makefile
// and docs mention must exist.
func TestRepositorySuiteConfig(t *testing.T) {
	cfg, err := LoadSuiteConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default", "ci", "smoke"} {
		if _, err := cfg.Profile(name); err != nil {
			t.Error(err)
		}
	}
	for name := range cfg.Services {
		if !slices.Contains(knownServices, name) {
			t.Errorf("service %s", name)
		}
	}
}

func TestProfileFlags(t *testing.T) {
	p := Profile{
		Procs: 4, LabelFilter: "smoke", RandomizeAll: true, KeepGoing: true, FailOnPending: true, FailOnEmpty: true,
		PollProgressAfter: time.Minute, Timeout: 30 * time.Minute, Verbosity: "v",
		JUnitReport: "junit.xml", OutputDir: "reports", KeepSeparateReports: true,
	}
	want := []string{
		"--procs=4", "--label-filter=smoke", "--randomize-all", "--keep-going", "--fail-on-pending", "--fail-on-empty",
		"--poll-progress-after=1m0s", "--timeout=30m0s", "-v", "--junit-report=junit.xml", "--output-dir=reports",
		"--keep-separate-reports",
	}
	if got := p.Flags(); !slices.Equal(got, want) {
		t.Fatalf("flags:\n got %q\nwant %q", got, want)
	}
	if got := (Profile{Procs: 1}).Flags(); len(got) != 0 {
		t.Fatalf("serial profile: %q, want no flags", got)
	}
}

func TestAndLabelFilters(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"", "", ""},
		{"smoke", "", "smoke"},
		{"", " x ", "x"},
		{"smoke", "a || b", "(smoke)&&(a || b)"},
	} {
		if got := AndLabelFilters(tc.a, tc.b); got != tc.want {
			t.Errorf("AndLabelFilters(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}
