// Package config loads a service's configuration from environment variables.
//
// Every service describes its settings as a struct with caarlos0/env tags and
// a per-service prefix (MAIL_, NOTIFICATION_, …). A value that does not parse
// stops the process before it listens: MustLoad prints one line naming the
// variable and exits with code 2, as the wire contract requires.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgconn"
)

// ExitCodeInvalidConfig is the process exit code for unusable configuration.
const ExitCodeInvalidConfig = 2

// Load parses the environment into a T using prefix for every variable.
// Errors name the offending variables.
func Load[T any](prefix string) (T, error) {
	return LoadFrom[T](prefix, nil)
}

// LoadFrom is Load over an explicit environment (nil means the process
// environment); tests use it to avoid touching os.Environ.
func LoadFrom[T any](prefix string, environ map[string]string) (T, error) {
	var cfg T
	opts := env.Options{Prefix: prefix, Environment: environ}
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		return cfg, describe(err, &cfg, prefix)
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(prefix); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Validator is implemented by configurations with rules beyond parsing.
// Errors must name the variable, prefix included. A service type that
// embeds Base and defines its own Validate must call Base.Validate.
type Validator interface {
	Validate(prefix string) error
}

// MustLoad is Load that exits the process with code 2 on error.
func MustLoad[T any](prefix string) T {
	cfg, err := Load[T](prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid configuration: %v\n", err)
		os.Exit(ExitCodeInvalidConfig)
	}
	return cfg
}

// describe rewrites caarlos0/env errors, which name Go struct fields, so that
// they name the environment variables an operator actually sets.
func describe(err error, cfg any, prefix string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := map[string]string{}
	envKeys(reflect.TypeOf(cfg).Elem(), prefix, keys)
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := pe.Name
			if k, ok := keys[pe.Name]; ok {
				name = k
			}
			msgs = append(msgs, fmt.Sprintf("%s: %v", name, pe.Err))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envKeys maps struct field names to their full variable names, following
// embedded structs and envPrefix the way caarlos0/env does.
func envKeys(t reflect.Type, prefix string, out map[string]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if tag, ok := f.Tag.Lookup("env"); ok {
			if name, _, _ := strings.Cut(tag, ","); name != "" {
				out[f.Name] = prefix + name
				continue
			}
		}
		if ft.Kind() == reflect.Struct {
			envKeys(ft, prefix+f.Tag.Get("envPrefix"), out)
		}
	}
}

// LogLevel is a slog level parsed from debug, info, warn or error.
type LogLevel slog.Level

// UnmarshalText accepts exactly the four level names of the contract.
func (l *LogLevel) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "debug":
		*l = LogLevel(slog.LevelDebug)
	case "info":
		*l = LogLevel(slog.LevelInfo)
	case "warn":
		*l = LogLevel(slog.LevelWarn)
	case "error":
		*l = LogLevel(slog.LevelError)
	default:
		return fmt.Errorf("unknown log level %q (want debug, info, warn or error)", b)
	}
	return nil
}

// Level returns the slog level.
func (l LogLevel) Level() slog.Level { return slog.Level(l) }

// Addr is a host:port listen or dial address, checked at load time so that a
// typo stops the process instead of failing on first use.
type Addr string

// UnmarshalText validates host:port with a numeric port.
func (a *Addr) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("malformed address %q: %v", s, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("malformed address %q: bad port", s)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("malformed address %q: bad host", s)
	}
	*a = Addr(s)
	return nil
}

// String returns the address.
func (a Addr) String() string { return string(a) }

// Base holds the settings every service shares (CONTRACTS §2). Services embed
// it and add their own listen address with its per-service default.
type Base struct {
	LogLevel            LogLevel `env:"LOG_LEVEL" envDefault:"info"`
	RedisAddr           Addr     `env:"REDIS_ADDR" envDefault:"127.0.0.1:6379"`
	RedisPassword       string   `env:"REDIS_PASSWORD"`
	RedisDB             int      `env:"REDIS_DB" envDefault:"0"`
	PostgresDSN         string   `env:"POSTGRES_DSN,required"`
	ShutdownTimeout     Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	StreamMaxDeliveries int      `env:"STREAM_MAX_DELIVERIES" envDefault:"5"`
	// StreamClaimIdle is how long an entry may sit unacknowledged with a
	// consumer before another consumer reclaims it (XAUTOCLAIM). It is also
	// the retry delay after a failed delivery.
	StreamClaimIdle Duration `env:"STREAM_CLAIM_IDLE" envDefault:"30s"`
	// StreamConsumer names this process in its consumer groups. A stable name
	// lets a restarted process pick up its own pending entries at once.
	StreamConsumer string `env:"STREAM_CONSUMER"`
	// StreamRetention is how long an entry of a stream the service consumes
	// is kept; older ones are trimmed unless a consumer group still needs
	// them (see streams.Housekeeper). StreamDeadRetention is the same for
	// its dead-letter stream, kept longer for an operator to act on.
	StreamRetention     Duration `env:"STREAM_RETENTION" envDefault:"168h"`
	StreamDeadRetention Duration `env:"STREAM_DEAD_RETENTION" envDefault:"720h"`
	// StreamConsumerIdle is how long a consumer name with nothing pending
	// may stay unused before it is deleted from its group.
	StreamConsumerIdle Duration `env:"STREAM_CONSUMER_IDLE" envDefault:"24h"`
	// RecordRetention is how long a finished record (a delivery, a
	// notification, a job outcome) is kept. It must be at least
	// StreamRetention: a command still in a stream must find its record, or
	// a copy of it sent again would be handled again.
	RecordRetention Duration `env:"RECORD_RETENTION" envDefault:"720h"`
	// HousekeepingInterval is the pause between rounds of trimming streams
	// and deleting records past their retention.
	HousekeepingInterval Duration `env:"HOUSEKEEPING_INTERVAL" envDefault:"1m"`
	// InternalAPIToken, when set, is required as a bearer token on the
	// internal API (not on /healthz, /readyz, /metrics).
	InternalAPIToken string `env:"INTERNAL_API_TOKEN"`
}

// Validate checks the rules of Base that parsing alone does not.
func (b *Base) Validate(prefix string) error {
	if b.StreamMaxDeliveries < 1 {
		return fmt.Errorf("%sSTREAM_MAX_DELIVERIES: must be at least 1, got %d", prefix, b.StreamMaxDeliveries)
	}
	if _, err := pgconn.ParseConfig(b.PostgresDSN); err != nil {
		return fmt.Errorf("%sPOSTGRES_DSN: not a PostgreSQL connection string: %s", prefix, dsnProblem(err))
	}
	if b.RecordRetention < b.StreamRetention {
		return fmt.Errorf("%sRECORD_RETENTION: %s is shorter than %sSTREAM_RETENTION %s; records must outlive the stream entries that refer to them",
			prefix, b.RecordRetention.D(), prefix, b.StreamRetention.D())
	}
	return nil
}

// dsnProblem says what is wrong with a connection string without quoting
// it: pgx's message and net/url's repeat the string, password included
// where their redaction cannot find it.
func dsnProblem(err error) string {
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) {
		err = errors.Unwrap(perr)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if err == nil {
		return "malformed"
	}
	return err.Error()
}
