package main

import (
	"fmt"
	"os"

	"galaxy/mail/command"
	"galaxy/platform/config"
)

// SMTP modes.
const (
	modeStub = "stub"
	modeSMTP = "smtp"
)

// Config is the Mail Service's configuration, from MAIL_* variables.
type Config struct {
	config.Base
	HTTPAddr config.Addr `env:"INTERNAL_HTTP_ADDR" envDefault:"127.0.0.1:8082"`

	// TemplateDir holds <template_id>/<locale>/{subject,text,html}.tmpl.
	TemplateDir   string `env:"TEMPLATE_DIR" envDefault:"mail/templates"`
	DefaultLocale string `env:"DEFAULT_LOCALE" envDefault:"en"`

	CommandsStream     string          `env:"COMMANDS_STREAM" envDefault:"mail:delivery_commands"`
	StreamBlockTimeout config.Duration `env:"STREAM_BLOCK_TIMEOUT" envDefault:"2s"`
	// CommandsConcurrency is the number of stream consumers in this process;
	// their entries are inserted together (see package intake).
	CommandsConcurrency int `env:"COMMANDS_CONCURRENCY" envDefault:"32"`

	OperatorRequestTimeout config.Duration `env:"OPERATOR_REQUEST_TIMEOUT" envDefault:"10s"`

	SMTPMode     string          `env:"SMTP_MODE" envDefault:"stub"`
	SMTPAddr     string          `env:"SMTP_ADDR"`
	SMTPFrom     string          `env:"SMTP_FROM"`
	SMTPUsername string          `env:"SMTP_USERNAME"`
	SMTPPassword string          `env:"SMTP_PASSWORD"`
	SMTPStartTLS bool            `env:"SMTP_STARTTLS" envDefault:"false"`
	SMTPTimeout  config.Duration `env:"SMTP_TIMEOUT" envDefault:"15s"`
	// SMTPConcurrency is how many messages this process sends at once.
	SMTPConcurrency int `env:"SMTP_CONCURRENCY" envDefault:"4"`

	RetryBackoffMin config.Duration `env:"RETRY_BACKOFF_MIN" envDefault:"5s"`
	RetryBackoffMax config.Duration `env:"RETRY_BACKOFF_MAX" envDefault:"10m"`
	MaxAttempts     int             `env:"MAX_ATTEMPTS" envDefault:"8"`

	// SendLease is how long a sender's claim on a batch keeps other senders
	// away; after it a delivery whose sender died is taken again.
	SendLease config.Duration `env:"SEND_LEASE" envDefault:"2m"`
	// SenderPollInterval is how often the queue is checked for retries and
	// for work stored by other replicas.
	SenderPollInterval config.Duration `env:"SENDER_POLL_INTERVAL" envDefault:"250ms"`
}

// Validate checks the rules that parsing alone does not.
func (c *Config) Validate(prefix string) error {
	if err := c.Base.Validate(prefix); err != nil {
		return err
	}
	if _, err := command.CanonicalLocale(c.DefaultLocale); err != nil {
		return fmt.Errorf("%sDEFAULT_LOCALE: %v", prefix, err)
	}
	if info, err := os.Stat(c.TemplateDir); err != nil || !info.IsDir() {
		return fmt.Errorf("%sTEMPLATE_DIR: %q is not a readable directory", prefix, c.TemplateDir)
	}
	if c.CommandsStream == "" {
		return fmt.Errorf("%sCOMMANDS_STREAM: must not be empty", prefix)
	}
	if c.CommandsConcurrency < 1 || c.CommandsConcurrency > 256 {
		return fmt.Errorf("%sCOMMANDS_CONCURRENCY: must be from 1 to 256, got %d", prefix, c.CommandsConcurrency)
	}
	if c.SMTPConcurrency < 1 || c.SMTPConcurrency > 256 {
		return fmt.Errorf("%sSMTP_CONCURRENCY: must be from 1 to 256, got %d", prefix, c.SMTPConcurrency)
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("%sMAX_ATTEMPTS: must be at least 1, got %d", prefix, c.MaxAttempts)
	}
	if c.RetryBackoffMin.D() > c.RetryBackoffMax.D() {
		return fmt.Errorf("%sRETRY_BACKOFF_MIN: %s is more than %sRETRY_BACKOFF_MAX %s", prefix, c.RetryBackoffMin.D(), prefix, c.RetryBackoffMax.D())
	}
	switch c.SMTPMode {
	case modeStub:
	case modeSMTP:
		if c.SMTPAddr == "" {
			return fmt.Errorf("%sSMTP_ADDR: required when %sSMTP_MODE is smtp", prefix, prefix)
		}
		var a config.Addr
		if err := a.UnmarshalText([]byte(c.SMTPAddr)); err != nil {
			return fmt.Errorf("%sSMTP_ADDR: %v", prefix, err)
		}
		if c.SMTPFrom == "" {
			return fmt.Errorf("%sSMTP_FROM: required when %sSMTP_MODE is smtp", prefix, prefix)
		}
		if _, err := command.ParseAddress(c.SMTPFrom); err != nil {
			return fmt.Errorf("%sSMTP_FROM: %v", prefix, err)
		}
		if c.SMTPPassword != "" && c.SMTPUsername == "" {
			return fmt.Errorf("%sSMTP_USERNAME: required when %sSMTP_PASSWORD is set", prefix, prefix)
		}
	default:
		return fmt.Errorf("%sSMTP_MODE: must be stub or smtp, got %q", prefix, c.SMTPMode)
	}
	// A batch of SMTPConcurrency sends must finish inside its lease, or a
	// second sender would take deliveries that are still being sent.
	if c.SendLease.D() < 2*c.SMTPTimeout.D() {
		return fmt.Errorf("%sSEND_LEASE: %s must be at least twice %sSMTP_TIMEOUT (%s)", prefix, c.SendLease.D(), prefix, c.SMTPTimeout.D())
	}
	return nil
}
