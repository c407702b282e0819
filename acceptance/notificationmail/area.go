// Package notificationmail is the area Notification → Mail,
// with the User Service behind Notification. It drives the real binaries on
// real Redis and PostgreSQL and proves, through both services' APIs, the
// contract of ../../docs/contracts.md §3–§5: an intent becomes one sent
// delivery per recipient — admins from configuration, users resolved with
// their locale and opt-out — exactly once, whatever is repeated, malformed,
// down or killed on the way.
//
// Every process runs its own three services on its own streams and
// databases, started by the first spec of the area it runs.
package notificationmail

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// crashAdmin receives only the crash spec's mail, so that spec can count it.
const crashAdmin = "nm-crash@example.com"

// The admin lists of the suite.
var adminLists = map[string]string{
	"runtime.image_pull_failed":      "nm-admin@example.com,nm-oncall@example.com",
	"runtime.container_start_failed": "nm-admin@example.com",
	"runtime.start_config_invalid":   crashAdmin,
}

// services are one process's three services, their clients and its
// streams.
type services struct {
	rdb                               *redis.Client
	intents, mailCommands             string
	userURL, mailURL, notificationURL string
	user, mail, notification          *harness.Process
	users                             *harness.UserClient
	mailAPI                           *harness.MailClient
	notifications                     *harness.NotificationClient
}

var (
	infra harness.Infra
	svc   *services // this process's three services
)

var area = framework.Area{Label: speclabel.Notification, Setup: func(ctx SpecContext) {
	infra = framework.Infra()
	svc = framework.Shared(ctx, "notification and mail", startServices)
}}

// describe registers Notification → Mail specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }

// Name and Processes make the services a shared resource of the process.
func (s *services) Name() string { return "notification and mail" }
func (s *services) Processes() []*harness.Process {
	return []*harness.Process{s.user, s.mail, s.notification}
}

// startServices starts the User Service, Mail (stub SMTP) and Notification
// with fresh databases on fresh streams, and waits until each is ready.
func startServices(ctx context.Context, tb harness.TB) *services {
	suffix := harness.UniqueSuffix()
	s := &services{
		rdb:          redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true}),
		intents:      "notification:intents:" + suffix,
		mailCommands: "mail:delivery_commands:" + suffix,
	}
	tb.Cleanup(func() { _ = s.rdb.Close() })
	pg := infra.Postgres()
	common := func(prefix, service string) map[string]string {
		dsn, err := pg.CreateDatabase(ctx, service+"_"+suffix)
		if err != nil {
			tb.Fatalf("%s database: %v", service, err)
		}
		return map[string]string{
			prefix + "LOG_LEVEL":          "info",
			prefix + "REDIS_ADDR":         infra.RedisAddr,
			prefix + "POSTGRES_DSN":       dsn,
			prefix + "INTERNAL_HTTP_ADDR": harness.FreeTCPAddress(tb),
			prefix + "SHUTDOWN_TIMEOUT":   "5s",
			prefix + "STREAM_CLAIM_IDLE":  "2s",
			prefix + "STREAM_CONSUMER":    service + "-" + suffix,
			"OTEL_TRACES_EXPORTER":        "none",
			"OTEL_METRICS_EXPORTER":       "none",
		}
	}
	start := func(service, prefix string, env map[string]string) (*harness.Process, string) {
		p := harness.StartProcess(tb, service, infra.Binary(tb, service), env)
		base := "http://" + env[prefix+"INTERNAL_HTTP_ADDR"]
		harness.WaitForHTTPStatus(tb, p, base+"/readyz", http.StatusOK)
		return p, base
	}
	s.user, s.userURL = start("userservice", "USERSERVICE_", common("USERSERVICE_", "userservice"))

	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	mailEnv := common("MAIL_", "mail")
	mailEnv["MAIL_TEMPLATE_DIR"] = filepath.Join(root, "mail", "templates")
	mailEnv["MAIL_SMTP_MODE"] = "stub"
	mailEnv["MAIL_COMMANDS_STREAM"] = s.mailCommands
	mailEnv["MAIL_STREAM_BLOCK_TIMEOUT"] = "100ms"
	s.mail, s.mailURL = start("mail", "MAIL_", mailEnv)

	env := common("NOTIFICATION_", "notification")
	env["NOTIFICATION_USER_SERVICE_BASE_URL"] = s.userURL
	env["NOTIFICATION_USER_SERVICE_TIMEOUT"] = "1s"
	env["NOTIFICATION_INTENTS_READ_BLOCK_TIMEOUT"] = "100ms"
	env["NOTIFICATION_ROUTE_BACKOFF_MIN"] = "100ms"
	env["NOTIFICATION_ROUTE_BACKOFF_MAX"] = "500ms"
	env["NOTIFICATION_ROUTE_MAX_ATTEMPTS"] = "100"
	env["NOTIFICATION_INTENTS_STREAM"] = s.intents
	env["NOTIFICATION_MAIL_COMMANDS_STREAM"] = s.mailCommands
	for notificationType, list := range adminLists {
		env[harness.AdminEmailsVariable(notificationType)] = list
	}
	s.notification, s.notificationURL = start("notification", "NOTIFICATION_", env)
	s.users = &harness.UserClient{BaseURL: s.userURL}
	s.mailAPI = &harness.MailClient{BaseURL: s.mailURL}
	s.notifications = &harness.NotificationClient{BaseURL: s.notificationURL}
	return s
}

// publish appends an intent and returns its entry ID.
func (s *services) publish(ctx context.Context, fields map[string]string) string {
	values := map[string]any{}
	for k, v := range fields {
		values[k] = v
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.intents, Values: values}).Result()
	Expect(err).NotTo(HaveOccurred())
	return id
}

// adminIntent is a runtime failure intent as the Runtime Manager writes it.
func adminIntent(notificationType, gameID string) map[string]string {
	payload, _ := json.Marshal(map[string]any{
		"game_id": gameID, "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
		"error_message": "manifest unknown", "attempted_at_ms": time.Now().UnixMilli(),
	})
	return map[string]string{
		"notification_type": notificationType,
		"producer":          "runtime_manager",
		"audience_kind":     "admin_email",
		"payload_json":      string(payload),
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// userIntent is a lobby intent for some users.
func userIntent(gameID string, userIDs ...string) map[string]string {
	audience, _ := json.Marshal(map[string]any{"user_ids": userIDs})
	return map[string]string{
		"notification_type": "lobby.game_starting",
		"producer":          "lobby",
		"audience_kind":     "user",
		"audience_json":     string(audience),
		"payload_json":      `{"game_id":"` + gameID + `"}`,
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// record is Notification's record of the intent with entry ID intentID.
func (s *services) record(ctx context.Context, g Gomega, intentID string) harness.Notification {
	n, err := s.notifications.Notification(ctx, intentID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.IntentEntryID).To(Equal(intentID))
	return n
}

// deliveries lists Mail's deliveries matching q (all pages).
func (s *services) deliveries(ctx context.Context, g Gomega, q harness.DeliveryQuery) []harness.Delivery {
	items, err := s.mailAPI.AllDeliveries(ctx, q)
	g.Expect(err).NotTo(HaveOccurred())
	return items
}

func (s *services) delivery(ctx context.Context, g Gomega, id string) harness.Delivery {
	d, err := s.mailAPI.Delivery(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.DeliveryID).To(Equal(id))
	return d
}

// createUser creates a user through the User Service's API and checks that
// it was stored as given.
func (s *services) createUser(ctx context.Context, u harness.NewUser) {
	GinkgoHelper()
	got, err := s.users.Create(ctx, u)
	Expect(err).NotTo(HaveOccurred(), "create user %+v", u)
	Expect(got.UserID).To(Equal(u.UserID))
	Expect(got.Email).To(Equal(u.Email))
	Expect(got.Locale).To(Equal(u.Locale))
}
