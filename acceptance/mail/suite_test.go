// Package mail_test is the Mail Service's acceptance suite. It drives the
// real mail binary on real Redis and PostgreSQL, sending to a real SMTP
// server (Mailpit), and proves through public surfaces only — the command
// stream and its dead letters, the internal HTTP API, and what the SMTP
// server received — the contract of ../../docs/contracts.md §3 and §5 and
// the behaviour of ../../docs/mail.md: a command becomes one rendered,
// correctly encoded message, exactly once; malformed commands are
// dead-lettered without stopping the stream; SMTP failures are retried or
// fail the delivery according to the reply.
//
// Process 1 starts Redis and PostgreSQL and builds the binary; every parallel
// process starts its own Mailpit and its own mail process (smtp mode, short
// retry schedule) on its own stream and database. Specs that stop Mailpit or
// set its chaos triggers restore it in DeferCleanup.
package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

var (
	infra harness.Infra
	svc   *service
)

// service is one process's mail service, its stream and its SMTP server.
type service struct {
	rdb     *redis.Client
	stream  string
	baseURL string
	mail    *harness.Process
	mailpit *harness.Mailpit
}

func TestMail(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Mail Service")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	redisSrv := harness.StartRedis(ctx, GinkgoT())
	pg := harness.StartPostgres(ctx, GinkgoT())
	bins := harness.BuildBinaries(GinkgoT(), "./mail/cmd/mail")
	return harness.Infra{
		RedisAddr: redisSrv.Addr, RedisContainerID: redisSrv.ContainerID,
		PostgresAdminDSN: pg.AdminDSN, PostgresContainerID: pg.ContainerID,
		Binaries: bins, DockerHost: harness.DockerHost(),
	}.Encode()
}, func(ctx SpecContext, data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	svc = startService(ctx)
}, NodeTimeout(harness.SuiteSetupTimeout))

var _ = AfterEach(func(ctx SpecContext) {
	if !CurrentSpecReport().Failed() || svc == nil {
		return
	}
	for _, stream := range []string{svc.stream, svc.stream + ":dead"} {
		n, _ := svc.rdb.XLen(ctx, stream).Result()
		AddReportEntry(stream, fmt.Sprintf("%d entries", n), ReportEntryVisibilityFailureOrVerbose)
	}
	harness.AttachLogsOnFailure(svc.mail, svc.mailpit.Process)
}, NodeTimeout(harness.ReportTimeout))

// startService starts Mailpit and a mail process in smtp mode pointed at it,
// with a fresh database and stream, and waits until both are ready.
func startService(ctx context.Context) *service {
	suffix := harness.UniqueSuffix()
	s := &service{
		rdb:     redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true}),
		stream:  "mail:delivery_commands:" + suffix,
		mailpit: harness.StartMailpit(ctx, GinkgoT()),
	}
	DeferCleanup(s.rdb.Close)
	dsn, err := infra.Postgres().CreateDatabase(ctx, "mail_"+suffix)
	Expect(err).NotTo(HaveOccurred())
	root, err := harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	addr := harness.FreeTCPAddress(GinkgoT())
	env := map[string]string{
		"MAIL_LOG_LEVEL":                "info",
		"MAIL_REDIS_ADDR":               infra.RedisAddr,
		"MAIL_POSTGRES_DSN":             dsn,
		"MAIL_INTERNAL_HTTP_ADDR":       addr,
		"MAIL_SHUTDOWN_TIMEOUT":         "5s",
		"MAIL_STREAM_CLAIM_IDLE":        "2s",
		"MAIL_STREAM_CONSUMER":          "mail-" + suffix,
		"MAIL_TEMPLATE_DIR":             filepath.Join(root, "mail", "templates"),
		"MAIL_COMMANDS_STREAM":          s.stream,
		"MAIL_STREAM_BLOCK_TIMEOUT":     "100ms",
		"MAIL_OPERATOR_REQUEST_TIMEOUT": "5s",
		"MAIL_SMTP_MODE":                "smtp",
		"MAIL_SMTP_ADDR":                s.mailpit.SMTPAddr,
		"MAIL_SMTP_FROM":                mailFrom,
		"MAIL_SMTP_TIMEOUT":             "5s",
		"MAIL_SEND_LEASE":               "10s",
		"MAIL_RETRY_BACKOFF_MIN":        "200ms",
		"MAIL_RETRY_BACKOFF_MAX":        "400ms",
		"MAIL_MAX_ATTEMPTS":             "4",
		"MAIL_SENDER_POLL_INTERVAL":     "50ms",
		"OTEL_TRACES_EXPORTER":          "none",
		"OTEL_METRICS_EXPORTER":         "none",
	}
	s.mail = harness.StartProcess(GinkgoT(), "mail", infra.Binary(GinkgoT(), "mail"), env)
	s.baseURL = "http://" + addr
	harness.WaitForHTTPStatus(GinkgoT(), s.mail, s.baseURL+"/readyz", http.StatusOK)
	return s
}

const mailFrom = "Galaxy Mail <mail@galaxy.example>"

// recipient is an address no other spec or process uses.
func recipient(what string) string {
	return harness.UniqueName(what) + "@example.com"
}

// imagePullCommand is the mail command Notification writes for an admin of
// runtime.image_pull_failed.
func imagePullCommand(key, to, locale string, vars map[string]any) map[string]string {
	if vars == nil {
		vars = map[string]any{
			"game_id": "game-1", "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
			"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
		}
	}
	raw, _ := json.Marshal(vars)
	to2, _ := json.Marshal([]string{to})
	return map[string]string{
		"source":                  "notification",
		"payload_mode":            "template",
		"template_id":             "runtime.image_pull_failed",
		"locale":                  locale,
		"template_variables_json": string(raw),
		"to_json":                 string(to2),
		"idempotency_key":         key,
		"requested_at_ms":         strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// push appends a command to the stream.
func (s *service) push(ctx context.Context, fields map[string]string) {
	values := map[string]any{}
	for k, v := range fields {
		values[k] = v
	}
	Expect(s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, Values: values}).Err()).To(Succeed())
}

// delivery is Mail's delivery detail (lenient decoding).
type delivery struct {
	DeliveryID        string         `json:"delivery_id"`
	Source            string         `json:"source"`
	TemplateID        string         `json:"template_id"`
	Locale            string         `json:"locale"`
	ResolvedLocale    string         `json:"resolved_locale"`
	To                []string       `json:"to"`
	Status            string         `json:"status"`
	IdempotencyKey    string         `json:"idempotency_key"`
	Subject           string         `json:"subject"`
	ErrorCode         string         `json:"error_code"`
	ErrorMessage      string         `json:"error_message"`
	TemplateVariables map[string]any `json:"template_variables"`
	Sequence          int            `json:"sequence"`
	SentAtMS          *int64         `json:"sent_at_ms"`
	Attempts          []struct {
		Attempt  int    `json:"attempt"`
		Sequence int    `json:"sequence"`
		Outcome  string `json:"outcome"`
		Error    string `json:"error"`
		SMTPCode int    `json:"smtp_code"`
	} `json:"attempts"`
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *service) do(ctx context.Context, method, path string, body any) response {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.baseURL+path, rd)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{resp.StatusCode, resp.Header, raw}
}

// deliveryByKey waits until the delivery of key has one of statuses.
func (s *service) deliveryByKey(ctx context.Context, key string, statuses ...string) delivery {
	var d delivery
	Eventually(ctx, func(g Gomega) {
		var list struct {
			Items []delivery `json:"items"`
		}
		g.Expect(harness.GetJSON(ctx, s.baseURL+"/api/v1/internal/deliveries?"+url.Values{"idempotency_key": {key}}.Encode(), &list)).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		g.Expect(list.Items[0].Status).To(BeElementOf(statuses))
		g.Expect(harness.GetJSON(ctx, s.baseURL+"/api/v1/internal/deliveries/"+url.PathEscape(list.Items[0].DeliveryID), &d)).To(Succeed())
	}).Should(Succeed())
	return d
}

// mailpitMessage is Mailpit's full message.
type mailpitMessage struct {
	ID        string                   `json:"ID"`
	MessageID string                   `json:"MessageID"`
	Subject   string                   `json:"Subject"`
	From      harness.MailpitAddress   `json:"From"`
	To        []harness.MailpitAddress `json:"To"`
	Text      string                   `json:"Text"`
	HTML      string                   `json:"HTML"`
}

// received returns the messages Mailpit holds for address.
func (s *service) received(ctx context.Context, address string) []mailpitMessage {
	var res struct {
		Messages []mailpitMessage `json:"messages"`
	}
	Expect(harness.GetJSON(ctx, s.mailpit.APIURL+"/api/v1/search?"+url.Values{"query": {"to:" + address}}.Encode(), &res)).To(Succeed())
	out := make([]mailpitMessage, 0, len(res.Messages))
	for _, m := range res.Messages {
		var full mailpitMessage
		Expect(harness.GetJSON(ctx, s.mailpit.APIURL+"/api/v1/message/"+url.PathEscape(m.ID), &full)).To(Succeed())
		out = append(out, full)
	}
	return out
}

// chaos sets Mailpit's SMTP failure triggers; {} turns them off.
func (s *service) chaos(ctx context.Context, triggers map[string]any) {
	raw, _ := json.Marshal(triggers)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.mailpit.APIURL+"/api/v1/chaos", bytes.NewReader(raw))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
}
