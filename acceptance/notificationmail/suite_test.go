// Package notificationmail_test is the boundary suite Notification → Mail,
// with the User Service behind Notification. It drives the real binaries on
// real Redis and PostgreSQL and proves, through both services' APIs, the
// contract of ../../docs/contracts.md §3–§5: an intent becomes one sent
// delivery per recipient — admins from configuration, users resolved with
// their locale and opt-out — exactly once, whatever is repeated, malformed,
// down or killed on the way.
//
// Process 1 starts Redis and PostgreSQL and builds the three binaries; every
// parallel process starts its own three services on its own streams and
// databases.
package notificationmail_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// crashAdmin receives only the crash spec's mail, so that spec can count it.
const crashAdmin = "nm-crash@example.com"

// The admin lists of the suite.
var adminLists = map[string]string{
	"runtime.image_pull_failed":      "nm-admin@example.com,nm-oncall@example.com",
	"runtime.container_start_failed": "nm-admin@example.com",
	"runtime.start_config_invalid":   crashAdmin,
}

// services are one process's three services and its streams.
type services struct {
	rdb                               *redis.Client
	intents, mailCommands             string
	userURL, mailURL, notificationURL string
	user, mail, notification          *harness.Process
}

var (
	infra harness.Infra
	svc   *services
)

func TestNotificationMail(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Notification → Mail boundary")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	redisSrv := harness.StartRedis(ctx, GinkgoT())
	pg := harness.StartPostgres(ctx, GinkgoT())
	bins := harness.BuildBinaries(GinkgoT(), "./user/cmd/userservice", "./mail/cmd/mail", "./notification/cmd/notification")
	return harness.Infra{
		RedisAddr: redisSrv.Addr, RedisContainerID: redisSrv.ContainerID,
		PostgresAdminDSN: pg.AdminDSN, PostgresContainerID: pg.ContainerID,
		Binaries: bins, DockerHost: harness.DockerHost(),
	}.Encode()
}, func(ctx SpecContext, data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	svc = startServices(ctx)
}, NodeTimeout(harness.SuiteSetupTimeout))

var _ = AfterEach(func(ctx SpecContext) {
	if !CurrentSpecReport().Failed() || svc == nil {
		return
	}
	for _, stream := range []string{svc.intents, svc.intents + ":dead", svc.mailCommands} {
		n, _ := svc.rdb.XLen(ctx, stream).Result()
		AddReportEntry(stream, fmt.Sprintf("%d entries", n), ReportEntryVisibilityFailureOrVerbose)
	}
	harness.AttachLogsOnFailure(svc.user, svc.mail, svc.notification)
}, NodeTimeout(harness.ReportTimeout))

// startServices starts the User Service, Mail (stub SMTP) and Notification
// with fresh databases on fresh streams, and waits until each is ready.
func startServices(ctx context.Context) *services {
	suffix := harness.UniqueSuffix()
	s := &services{
		rdb:          redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true}),
		intents:      "notification:intents:" + suffix,
		mailCommands: "mail:delivery_commands:" + suffix,
	}
	DeferCleanup(s.rdb.Close)
	pg := infra.Postgres()
	common := func(prefix, service string) map[string]string {
		dsn, err := pg.CreateDatabase(ctx, service+"_"+suffix)
		Expect(err).NotTo(HaveOccurred())
		return map[string]string{
			prefix + "LOG_LEVEL":          "info",
			prefix + "REDIS_ADDR":         infra.RedisAddr,
			prefix + "POSTGRES_DSN":       dsn,
			prefix + "INTERNAL_HTTP_ADDR": harness.FreeTCPAddress(GinkgoT()),
			prefix + "SHUTDOWN_TIMEOUT":   "5s",
			prefix + "STREAM_CLAIM_IDLE":  "2s",
			prefix + "STREAM_CONSUMER":    service + "-" + suffix,
			"OTEL_TRACES_EXPORTER":        "none",
			"OTEL_METRICS_EXPORTER":       "none",
		}
	}
	start := func(service, prefix string, env map[string]string) (*harness.Process, string) {
		p := harness.StartProcess(GinkgoT(), service, infra.Binary(GinkgoT(), service), env)
		base := "http://" + env[prefix+"INTERNAL_HTTP_ADDR"]
		harness.WaitForHTTPStatus(GinkgoT(), p, base+"/readyz", http.StatusOK)
		return p, base
	}
	s.user, s.userURL = start("userservice", "USERSERVICE_", common("USERSERVICE_", "userservice"))

	root, err := harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
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

// notification is Notification's record of an intent (lenient decoding).
type notification struct {
	IntentID    string  `json:"intent_entry_id"`
	Status      string  `json:"status"`
	Reason      *string `json:"reason"`
	DuplicateOf *string `json:"duplicate_of"`
	Routes      []struct {
		RouteID        string  `json:"route_id"`
		Recipient      *string `json:"recipient"`
		Status         string  `json:"status"`
		Reason         *string `json:"reason"`
		Attempts       int     `json:"attempts"`
		LastError      *string `json:"last_error"`
		IdempotencyKey string  `json:"idempotency_key"`
	} `json:"routes"`
}

func (s *services) record(ctx context.Context, g Gomega, intentID string) notification {
	var n notification
	g.Expect(harness.GetJSON(ctx, s.notificationURL+"/api/v1/internal/notifications/"+intentID, &n)).To(Succeed())
	return n
}

// deliveries lists Mail's deliveries for query (all pages).
func (s *services) deliveries(ctx context.Context, g Gomega, query url.Values) []harness.DeliverySummary {
	var out []harness.DeliverySummary
	query.Set("limit", "500")
	for {
		var page struct {
			Items      []harness.DeliverySummary `json:"items"`
			NextCursor string                    `json:"next_cursor"`
		}
		g.Expect(harness.GetJSON(ctx, s.mailURL+"/api/v1/internal/deliveries?"+query.Encode(), &page)).To(Succeed())
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		query.Set("cursor", page.NextCursor)
	}
}

func (s *services) delivery(ctx context.Context, g Gomega, id string) harness.DeliveryDetail {
	var d harness.DeliveryDetail
	g.Expect(harness.GetJSON(ctx, s.mailURL+"/api/v1/internal/deliveries/"+url.PathEscape(id), &d)).To(Succeed())
	return d
}

// createUser creates a user through the User Service's API.
func (s *services) createUser(ctx context.Context, user map[string]any) {
	body, _ := json.Marshal(user)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.userURL+"/api/v1/internal/users", bytesReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusCreated), "create user %s", body)
}
