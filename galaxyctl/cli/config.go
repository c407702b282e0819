package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"galaxy/galaxyctl/deadletter"
	"galaxy/mail/mailclient"
	"galaxy/notification/notificationclient"
)

// DefaultStreams are the streams whose consumers dead-letter entries, by the
// contract's names (docs/contracts.md §3): the Runtime Manager's two job
// streams, Notification's intents and Mail's commands.
var DefaultStreams = []string{"runtime:start_jobs", "runtime:stop_jobs", "notification:intents", "mail:delivery_commands"}

// config is galaxyctl's configuration: a flag each, whose default is its
// GALAXYCTL_* variable when set, else the services' own default.
type config struct {
	redisAddr, redisPassword string
	redisDB                  int
	mailURL, mailToken       string
	notificationURL          string
	notificationToken        string
	streams                  []string
	output                   string
	timeout                  time.Duration

	// envErr is the first variable that did not parse: reported when a
	// command runs, naming it (a bad --help should still show help).
	envErr error
}

// setting is one flag and its variable.
type setting struct {
	flag, env, usage string
}

func (c *config) bind(fs *pflag.FlagSet, env func(string) (string, bool)) {
	str := func(p *string, s setting, def string) {
		if v, ok := env(s.env); ok {
			def = v
		}
		fs.StringVar(p, s.flag, def, s.usage+" ("+s.env+")")
	}
	str(&c.redisAddr, setting{"redis-addr", "GALAXYCTL_REDIS_ADDR", "Redis host:port"}, "127.0.0.1:6379")
	str(&c.redisPassword, setting{"redis-password", "GALAXYCTL_REDIS_PASSWORD", "Redis password"}, "")
	str(&c.mailURL, setting{"mail-url", "GALAXYCTL_MAIL_URL", "Mail's internal API base URL"}, "http://127.0.0.1:8082")
	str(&c.mailToken, setting{"mail-token", "GALAXYCTL_MAIL_TOKEN", "Mail's MAIL_INTERNAL_API_TOKEN"}, "")
	str(&c.notificationURL, setting{"notification-url", "GALAXYCTL_NOTIFICATION_URL", "Notification's internal API base URL"}, "http://127.0.0.1:8083")
	str(&c.notificationToken, setting{"notification-token", "GALAXYCTL_NOTIFICATION_TOKEN", "Notification's NOTIFICATION_INTERNAL_API_TOKEN"}, "")

	db := 0
	if v, ok := env("GALAXYCTL_REDIS_DB"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.setEnvErr(fmt.Errorf("GALAXYCTL_REDIS_DB=%q: not a Redis database number", v))
		}
		db = n
	}
	fs.IntVar(&c.redisDB, "redis-db", db, "Redis database number (GALAXYCTL_REDIS_DB)")

	streams := DefaultStreams
	if v, ok := env("GALAXYCTL_STREAMS"); ok {
		streams = splitList(v)
	}
	fs.StringSliceVar(&c.streams, "streams", streams, "the source streams whose dead letters deadletters list reads, comma-separated (GALAXYCTL_STREAMS)")

	output := "table"
	if v, ok := env("GALAXYCTL_OUTPUT"); ok {
		output = v
	}
	fs.StringVarP(&c.output, "output", "o", output, "answer format: table or json (GALAXYCTL_OUTPUT)")

	timeout := 30 * time.Second
	if v, ok := env("GALAXYCTL_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.setEnvErr(fmt.Errorf("GALAXYCTL_TIMEOUT=%q: not a positive duration (e.g. 30s)", v))
		} else {
			timeout = d
		}
	}
	fs.DurationVar(&c.timeout, "timeout", timeout, "bound of the whole command, a resend's wait included (GALAXYCTL_TIMEOUT)")
}

func (c *config) setEnvErr(err error) {
	if c.envErr == nil {
		c.envErr = err
	}
}

// check validates the configuration once flags are parsed.
func (c *config) check() error {
	if c.envErr != nil {
		return c.envErr
	}
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("--output %q: want table or json", c.output)
	}
	if c.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", c.timeout)
	}
	if _, _, err := net.SplitHostPort(c.redisAddr); err != nil {
		return fmt.Errorf("--redis-addr (GALAXYCTL_REDIS_ADDR) %q: want host:port", c.redisAddr)
	}
	if c.redisDB < 0 {
		return fmt.Errorf("--redis-db %d: want a database number", c.redisDB)
	}
	for name, u := range map[string]string{"--mail-url (GALAXYCTL_MAIL_URL)": c.mailURL, "--notification-url (GALAXYCTL_NOTIFICATION_URL)": c.notificationURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s %q: want an http(s) base URL such as http://127.0.0.1:8082", name, u)
		}
	}
	if len(c.streams) == 0 {
		return errors.New("--streams (GALAXYCTL_STREAMS) is empty")
	}
	for _, s := range c.streams {
		if err := deadletter.ValidStream(s); err != nil {
			return fmt.Errorf("--streams (GALAXYCTL_STREAMS): %w", err)
		}
	}
	return nil
}

// redisLog takes go-redis's own log lines (a failed dial, retried): the
// command's error says what failed, and stderr stays one JSON line per
// action.
type redisLog struct{}

func (redisLog) Printf(context.Context, string, ...any) {}

func (c *config) redis() *redis.Client {
	redis.SetLogger(redisLog{})
	return redis.NewClient(&redis.Options{
		Addr: c.redisAddr, Password: c.redisPassword, DB: c.redisDB,
		// One command at a time: no pool to warm, no client name to set
		// on servers that refuse CLIENT SETINFO.
		Protocol: 2, DisableIdentity: true, PoolSize: 2, MaxRetries: 1,
	})
}

func (c *config) httpClient() *http.Client { return &http.Client{Timeout: c.timeout} }

func (c *config) mail() *mailclient.Client {
	return mailclient.New(c.mailURL, c.mailToken, c.httpClient())
}

func (c *config) notification() *notificationclient.Client {
	return notificationclient.New(c.notificationURL, c.notificationToken, c.httpClient())
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
