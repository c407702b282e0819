// Package integration_test runs the mail binary against real PostgreSQL and
// Redis (containers from the harness) and, for SMTP, a real SMTP server
// (Mailpit, run as a subprocess), and checks it through its public surfaces
// only: the command stream, its dead-letter stream, the internal HTTP API and
// the messages the SMTP server received.
//
// Each test starts its own mail process with its own database and its own
// stream names, so tests share nothing but the containers.
package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/mail/command"
	"galaxy/platform/streams"
)

var infra harness.Infra

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping mail integration tests in -short mode")
		os.Exit(0)
	}
	tb := harness.NewPackageTB("mail-integration")
	ctx := context.Background()
	code := func() int {
		defer tb.Close()
		infra = harness.Infra{
			RedisAddr:        harness.StartRedis(ctx, tb).Addr,
			PostgresAdminDSN: harness.StartPostgres(ctx, tb).AdminDSN,
			Binaries:         harness.BuildBinaries(tb, harness.ServicePackages["mail"]),
		}
		return m.Run()
	}()
	os.Exit(code)
}

// mailService is one running mail process and what a test needs to talk to it.
type mailService struct {
	t       *testing.T
	svc     *harness.Service
	proc    *harness.Process
	baseURL string
	stream  string
	rdb     *redis.Client
}

// testEnv is what these tests change of the harness's base environment.
var testEnv = map[string]string{
	// Quick takeover of a killed consumer's entries and quick sends.
	"MAIL_STREAM_CLAIM_IDLE":    "1s",
	"MAIL_SENDER_POLL_INTERVAL": "50ms",
	// A resend waits for a real SMTP server's answer.
	"MAIL_OPERATOR_REQUEST_TIMEOUT": "3s",
	"MAIL_LOG_LEVEL":                "debug",
}

// startMail starts a mail process in stub mode with a fresh database and
// stream; extra overrides its environment.
func startMail(t *testing.T, extra map[string]string) *mailService {
	t.Helper()
	env := maps.Clone(testEnv)
	maps.Copy(env, extra)
	return newMailService(t, harness.StartService(context.Background(), t, harness.ServiceSpec{
		Name: "mail", Infra: infra, Env: env,
	}))
}

// replica starts a second mail process on s's database and stream, with its
// own address and consumer name; env overrides.
func (s *mailService) replica(t *testing.T, env map[string]string) *mailService {
	t.Helper()
	return newMailService(t, s.svc.Replica(context.Background(), t, env))
}

func newMailService(t *testing.T, svc *harness.Service) *mailService {
	rdb := streams.NewClient(infra.RedisAddr, "", 0)
	t.Cleanup(func() { _ = rdb.Close() })
	return &mailService{t: t, svc: svc, proc: svc.Process, baseURL: svc.URL, stream: svc.Streams.MailCommands, rdb: rdb}
}

// push adds one command to the service's stream, as raw fields.
func (s *mailService) push(fields map[string]string) string {
	s.t.Helper()
	id, err := streams.Publish(context.Background(), s.rdb, s.stream, fields)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s *mailService) pushCommand(c command.Command) string {
	s.t.Helper()
	return s.push(c.StreamValues())
}

// templateCommand is a valid template-mode command for the image pull
// failure template, to key.
func templateCommand(key, to, locale string, vars map[string]any) command.Command {
	if vars == nil {
		vars = imagePullVars("game-1")
	}
	return command.Command{
		Source:         "notification",
		PayloadMode:    command.ModeTemplate,
		TemplateID:     "runtime.image_pull_failed",
		Locale:         locale,
		Variables:      vars,
		To:             []string{to},
		IdempotencyKey: key,
		RequestedAtMS:  time.Now().UnixMilli(),
	}
}

func imagePullVars(gameID string) map[string]any {
	return map[string]any{
		"game_id":         gameID,
		"image_ref":       "galaxy/integration-missing:0.0.0",
		"error_code":      "image_pull_failed",
		"error_message":   "pull galaxy/integration-missing:0.0.0: manifest unknown",
		"attempted_at_ms": json.Number("1700000000123"),
	}
}

// Response types, decoded leniently: the API may grow.
type summary struct {
	DeliveryID     string   `json:"delivery_id"`
	Source         string   `json:"source"`
	PayloadMode    string   `json:"payload_mode"`
	TemplateID     string   `json:"template_id"`
	Locale         string   `json:"locale"`
	To             []string `json:"to"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotency_key"`
	ErrorCode      string   `json:"error_code"`
	RequestedAtMS  int64    `json:"requested_at_ms"`
	CreatedAtMS    int64    `json:"created_at_ms"`
	SentAtMS       *int64   `json:"sent_at_ms"`
}

type attempt struct {
	Attempt      int    `json:"attempt"`
	Sequence     int    `json:"sequence"`
	StartedAtMS  int64  `json:"started_at_ms"`
	FinishedAtMS int64  `json:"finished_at_ms"`
	Outcome      string `json:"outcome"`
	Error        string `json:"error"`
	SMTPCode     int    `json:"smtp_code"`
}

type detail struct {
	summary
	Cc                []string       `json:"cc"`
	Bcc               []string       `json:"bcc"`
	ReplyTo           string         `json:"reply_to"`
	ResolvedLocale    string         `json:"resolved_locale"`
	Subject           string         `json:"subject"`
	TextBody          string         `json:"text_body"`
	HTMLBody          string         `json:"html_body"`
	TemplateVariables map[string]any `json:"template_variables"`
	ErrorMessage      string         `json:"error_message"`
	Attempts          []attempt      `json:"attempts"`
	Sequence          int            `json:"sequence"`
	UpdatedAtMS       int64          `json:"updated_at_ms"`
	Settled           *bool          `json:"settled"`
}

type listResponse struct {
	Items      []summary `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (s *mailService) do(method, path string, body any) httpResult {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.baseURL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: raw}
}

func decode[T any](t *testing.T, r httpResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

func (s *mailService) list(q url.Values) listResponse {
	s.t.Helper()
	r := s.do(http.MethodGet, "/api/v1/internal/deliveries?"+q.Encode(), nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("list %v: %d %s", q, r.status, r.body)
	}
	return decode[listResponse](s.t, r)
}

func (s *mailService) get(id string) detail {
	s.t.Helper()
	r := s.do(http.MethodGet, "/api/v1/internal/deliveries/"+url.PathEscape(id), nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("get %s: %d %s", id, r.status, r.body)
	}
	return decode[detail](s.t, r)
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// byKey waits for the delivery of an idempotency key to reach one of
// statuses, and returns its detail.
func (s *mailService) byKey(key string, timeout time.Duration, statuses ...string) detail {
	s.t.Helper()
	var found detail
	eventually(s.t, timeout, fmt.Sprintf("delivery %q in %v", key, statuses), func() bool {
		l := s.list(url.Values{"idempotency_key": {key}})
		if len(l.Items) == 0 {
			return false
		}
		for _, st := range statuses {
			if l.Items[0].Status == st {
				found = s.get(l.Items[0].DeliveryID)
				return true
			}
		}
		return false
	})
	return found
}

func (s *mailService) deadLetters() []redis.XMessage {
	s.t.Helper()
	msgs, err := s.rdb.XRange(context.Background(), s.stream+streams.DeadLetterSuffix, "-", "+").Result()
	if err != nil {
		s.t.Fatal(err)
	}
	return msgs
}
