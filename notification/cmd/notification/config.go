package main

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/text/language"

	"galaxy/platform/config"
)

// Config is the Notification Service's environment (prefix NOTIFICATION_).
// The per-type admin lists (NOTIFICATION_ADMIN_EMAILS_<TYPE>) are not fields:
// their names are open-ended, so main scans the environment for them.
type Config struct {
	config.Base
	HTTPAddr config.Addr `env:"INTERNAL_HTTP_ADDR" envDefault:"127.0.0.1:8083"`

	IntentsStream           string          `env:"INTENTS_STREAM" envDefault:"notification:intents"`
	IntentsReadBlockTimeout config.Duration `env:"INTENTS_READ_BLOCK_TIMEOUT" envDefault:"2s"`
	MailCommandsStream      string          `env:"MAIL_COMMANDS_STREAM" envDefault:"mail:delivery_commands"`

	UserServiceBaseURL string          `env:"USER_SERVICE_BASE_URL" envDefault:"http://127.0.0.1:8081"`
	UserServiceTimeout config.Duration `env:"USER_SERVICE_TIMEOUT" envDefault:"2s"`
	// UserServiceToken is sent as a bearer token to a User Service that
	// requires one (USERSERVICE_INTERNAL_API_TOKEN).
	UserServiceToken string `env:"USER_SERVICE_TOKEN"`

	AdminLocale string `env:"ADMIN_LOCALE" envDefault:"en"`

	RouteBackoffMin  config.Duration `env:"ROUTE_BACKOFF_MIN" envDefault:"1s"`
	RouteBackoffMax  config.Duration `env:"ROUTE_BACKOFF_MAX" envDefault:"5m"`
	RouteMaxAttempts int             `env:"ROUTE_MAX_ATTEMPTS" envDefault:"8"`
	// RouteUnavailableFor, when set, has routes wait out Redis or the User
	// Service being unavailable for up to this long after their intent
	// entered its stream: those failures then do not count toward
	// ROUTE_MAX_ATTEMPTS. Unset, the contract's rule holds (CONTRACTS §4):
	// every failed hand-off counts, and an outage longer than the route's
	// backoff budget makes its routes dead.
	RouteUnavailableFor config.Duration `env:"ROUTE_UNAVAILABLE_FOR"`

	// IntentsConcurrency is how many stream workers (and so intents in
	// flight) one process runs; their entries are recorded in shared batches.
	IntentsConcurrency int `env:"INTENTS_CONCURRENCY" envDefault:"128"`
	// IntentsBatchMax bounds the intents recorded in one transaction.
	IntentsBatchMax int `env:"INTENTS_BATCH_MAX" envDefault:"256"`
}

// Validate checks the rules caarlos0/env cannot express; errors name the
// variable.
func (c *Config) Validate(prefix string) error {
	if err := c.Base.Validate(prefix); err != nil {
		return err
	}
	if strings.TrimSpace(c.IntentsStream) == "" {
		return fmt.Errorf("%sINTENTS_STREAM: must not be empty", prefix)
	}
	if strings.TrimSpace(c.MailCommandsStream) == "" {
		return fmt.Errorf("%sMAIL_COMMANDS_STREAM: must not be empty", prefix)
	}
	u, err := url.Parse(c.UserServiceBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%sUSER_SERVICE_BASE_URL: %q is not an http(s) URL", prefix, c.UserServiceBaseURL)
	}
	// Mail refuses a command whose locale is longer (docs/contracts.md,
	// Limits): every admin mail would be lost.
	if len(c.AdminLocale) > maxLocaleBytes {
		return fmt.Errorf("%sADMIN_LOCALE: longer than %d bytes", prefix, maxLocaleBytes)
	}
	if _, err := language.Parse(c.AdminLocale); err != nil {
		return fmt.Errorf("%sADMIN_LOCALE: %q is not a BCP 47 language tag", prefix, c.AdminLocale)
	}
	if c.RouteBackoffMin > c.RouteBackoffMax {
		return fmt.Errorf("%sROUTE_BACKOFF_MIN: %s is above %sROUTE_BACKOFF_MAX %s",
			prefix, c.RouteBackoffMin.D(), prefix, c.RouteBackoffMax.D())
	}
	if c.RouteMaxAttempts < 1 {
		return fmt.Errorf("%sROUTE_MAX_ATTEMPTS: must be at least 1, got %d", prefix, c.RouteMaxAttempts)
	}
	if c.RouteUnavailableFor != 0 && c.RouteUnavailableFor < c.RouteBackoffMax {
		// Shorter, a route would die of an outage before being retried once
		// at the backoff ceiling.
		return fmt.Errorf("%sROUTE_UNAVAILABLE_FOR: %s is below %sROUTE_BACKOFF_MAX %s",
			prefix, c.RouteUnavailableFor.D(), prefix, c.RouteBackoffMax.D())
	}
	if c.IntentsConcurrency < 1 || c.IntentsConcurrency > 1024 {
		return fmt.Errorf("%sINTENTS_CONCURRENCY: must be from 1 to 1024, got %d", prefix, c.IntentsConcurrency)
	}
	if c.IntentsBatchMax < 1 || c.IntentsBatchMax > 5000 {
		return fmt.Errorf("%sINTENTS_BATCH_MAX: must be from 1 to 5000, got %d", prefix, c.IntentsBatchMax)
	}
	return nil
}

// maxLocaleBytes is the longest locale the User Service stores and Mail
// accepts.
const maxLocaleBytes = 64
