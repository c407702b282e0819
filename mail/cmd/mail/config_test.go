package main

import (
	"strings"
	"testing"

	"galaxy/platform/config"
)

func load(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	full := map[string]string{
		"MAIL_POSTGRES_DSN": "postgres://localhost/mail",
		"MAIL_TEMPLATE_DIR": "../../templates",
	}
	for k, v := range env {
		full[k] = v
	}
	return config.LoadFrom[Config]("MAIL_", full)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8082" || cfg.SMTPMode != "stub" || cfg.CommandsStream != "mail:delivery_commands" ||
		cfg.DefaultLocale != "en" || cfg.MaxAttempts != 8 || cfg.RetryBackoffMin.D().String() != "5s" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestConfigErrorsNameTheVariable: every refusal names the full variable,
// so the operator knows what to fix (the process then exits 2).
func TestConfigErrorsNameTheVariable(t *testing.T) {
	smtp := map[string]string{"MAIL_SMTP_MODE": "smtp", "MAIL_SMTP_ADDR": "127.0.0.1:25", "MAIL_SMTP_FROM": "Galaxy <mail@example.com>"}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for bk, bv := range base {
			if bk != k {
				out[bk] = bv
			}
		}
		return out
	}
	if _, err := load(t, smtp); err != nil {
		t.Fatalf("valid smtp configuration refused: %v", err)
	}
	for variable, env := range map[string]map[string]string{
		"MAIL_SMTP_MODE":                {"MAIL_SMTP_MODE": "carrier-pigeon"},
		"MAIL_SMTP_ADDR":                with(smtp, "MAIL_SMTP_ADDR", "no-port"),
		"MAIL_SMTP_FROM":                with(smtp, "MAIL_SMTP_FROM", "mail@example.com\r\nBcc: x@example.com"),
		"MAIL_STREAM_BLOCK_TIMEOUT":     {"MAIL_STREAM_BLOCK_TIMEOUT": "soon"},
		"MAIL_OPERATOR_REQUEST_TIMEOUT": {"MAIL_OPERATOR_REQUEST_TIMEOUT": "0s"},
		"MAIL_RETRY_BACKOFF_MIN":        {"MAIL_RETRY_BACKOFF_MIN": "1m", "MAIL_RETRY_BACKOFF_MAX": "1s"},
		"MAIL_MAX_ATTEMPTS":             {"MAIL_MAX_ATTEMPTS": "0"},
		"MAIL_DEFAULT_LOCALE":           {"MAIL_DEFAULT_LOCALE": "not a locale"},
		"MAIL_TEMPLATE_DIR":             {"MAIL_TEMPLATE_DIR": "/nonexistent"},
		"MAIL_INTERNAL_HTTP_ADDR":       {"MAIL_INTERNAL_HTTP_ADDR": "localhost"},
		"MAIL_SEND_LEASE":               {"MAIL_SEND_LEASE": "10s", "MAIL_SMTP_TIMEOUT": "15s"},
		"MAIL_COMMANDS_CONCURRENCY":     {"MAIL_COMMANDS_CONCURRENCY": "0"},
		"MAIL_SMTP_USERNAME":            with(smtp, "MAIL_SMTP_PASSWORD", "secret"),
	} {
		_, err := load(t, env)
		if err == nil || !strings.Contains(err.Error(), variable) {
			t.Errorf("%s: err = %v", variable, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error reveals the password: %v", variable, err)
		}
	}
}
