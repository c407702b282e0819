package config_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"galaxy/platform/config"
)

type sample struct {
	config.Base
	HTTPAddr config.Addr     `env:"INTERNAL_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	Timeout  config.Duration `env:"TIMEOUT" envDefault:"5s"`
	Policy   string          `env:"POLICY" envDefault:"always"`
}

func TestDefaults(t *testing.T) {
	cfg, err := config.LoadFrom[sample]("X_", map[string]string{"X_POSTGRES_DSN": "postgres://x"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel.Level().String() != "INFO" || cfg.RedisAddr != "127.0.0.1:6379" ||
		cfg.ShutdownTimeout.D() != 10*time.Second || cfg.StreamMaxDeliveries != 5 || cfg.Timeout.D() != 5*time.Second {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"X_SHUTDOWN_TIMEOUT":      {"X_SHUTDOWN_TIMEOUT": "abc"},
		"X_LOG_LEVEL":             {"X_LOG_LEVEL": "loud"},
		"X_REDIS_ADDR":            {"X_REDIS_ADDR": "no-port"},
		"X_INTERNAL_HTTP_ADDR":    {"X_INTERNAL_HTTP_ADDR": "127.0.0.1:99999"},
		"X_TIMEOUT":               {"X_TIMEOUT": "-1s"},
		"X_POSTGRES_DSN":          {},
		"X_STREAM_MAX_DELIVERIES": {"X_STREAM_MAX_DELIVERIES": "0"},
		"X_STREAM_RETENTION":      {"X_STREAM_RETENTION": "0s"},
		"X_RECORD_RETENTION":      {"X_STREAM_RETENTION": "48h", "X_RECORD_RETENTION": "24h"},
	}
	for variable, env := range cases {
		t.Run(variable, func(t *testing.T) {
			if _, ok := env["X_POSTGRES_DSN"]; !ok && variable != "X_POSTGRES_DSN" {
				env["X_POSTGRES_DSN"] = "postgres://x"
			}
			_, err := config.LoadFrom[sample]("X_", env)
			if err == nil || !strings.Contains(err.Error(), variable) {
				t.Fatalf("want an error naming %s, got %v", variable, err)
			}
		})
	}
}

func TestUnparsableDSNIsNamedWithoutItsPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://galaxy:hunter2@127.0.0.1:notaport/galaxy",
		"host=127.0.0.1 password=hunter2 port=notaport",
		"postgres://galaxy:hunter2@[::1/galaxy",
	} {
		_, err := config.LoadFrom[sample]("X_", map[string]string{"X_POSTGRES_DSN": dsn})
		if err == nil || !strings.HasPrefix(err.Error(), "X_POSTGRES_DSN: not a PostgreSQL connection string: ") {
			t.Errorf("%s: want an error naming X_POSTGRES_DSN, got %v", dsn, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", dsn, err)
		}
	}
}

// TestMustLoadExitsTwo runs MustLoad in a child process, because exiting is
// the behaviour under test.
func TestMustLoadExitsTwo(t *testing.T) {
	if os.Getenv("CONFIG_TEST_CHILD") == "1" {
		config.MustLoad[sample]("X_")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMustLoadExitsTwo$")
	cmd.Env = append(os.Environ(), "CONFIG_TEST_CHILD=1", "X_POSTGRES_DSN=postgres://x", "X_SHUTDOWN_TIMEOUT=soon")
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != config.ExitCodeInvalidConfig {
		t.Fatalf("want exit code 2, got %v: %s", err, out)
	}
	if !strings.Contains(string(out), "X_SHUTDOWN_TIMEOUT") {
		t.Fatalf("message does not name the variable: %s", out)
	}
}
