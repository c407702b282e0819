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
	"context"
	"encoding/json"
	"flag"
	"fmt"
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
	t      *testing.T
	svc    *harness.Service
	proc   *harness.Process
	mail   *harness.MailClient
	stream string
	rdb    *redis.Client
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
	return &mailService{
		t: t, svc: svc, proc: svc.Process, mail: harness.NewMailClient(svc.URL, ""),
		stream: svc.Streams.MailCommands, rdb: rdb,
	}
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

// page returns one page of the deliveries matching q and the next page's
// cursor.
func (s *mailService) page(q harness.DeliveryQuery) ([]harness.Delivery, string) {
	s.t.Helper()
	items, next, err := s.mail.Deliveries(s.t.Context(), q)
	if err != nil {
		s.t.Fatalf("list %+v: %v", q, err)
	}
	return items, next
}

// list returns the first page of the deliveries matching q.
func (s *mailService) list(q harness.DeliveryQuery) []harness.Delivery {
	s.t.Helper()
	items, _ := s.page(q)
	return items
}

func (s *mailService) get(id string) harness.Delivery {
	s.t.Helper()
	d, err := s.mail.Delivery(s.t.Context(), id)
	if err != nil {
		s.t.Fatalf("get %s: %v", id, err)
	}
	return d
}

// resend asks for an operator resend of id and wants 200, the answer of a
// resend whose first attempt finished within the request; it returns the
// delivery and the answer's settled flag (nil when absent). The client's
// Resend takes 202 as well, and does not tell a missing flag from false.
func (s *mailService) resend(id string) (harness.Delivery, *bool) {
	s.t.Helper()
	var body struct {
		harness.Delivery
		Settled *bool `json:"settled"`
	}
	if _, err := harness.DoJSON(s.t.Context(), harness.Request{
		Method: http.MethodPost,
		URL:    s.mail.BaseURL + "/api/v1/internal/deliveries/" + url.PathEscape(id) + "/resend",
		Token:  s.mail.Token,
	}, &body, http.StatusOK); err != nil {
		s.t.Fatalf("resend %s: %v", id, err)
	}
	return body.Delivery, body.Settled
}

// isAPIError reports whether err is an answer with status and, when code is
// not empty, the contract error code.
func isAPIError(err error, status int, code string) bool {
	return harness.StatusOf(err) == status && (code == "" || harness.ErrorCodeOf(err) == code)
}

// pipeline is s as a harness pipeline of Mail alone: its stream's consumer
// group and its in-flight endpoint.
func (s *mailService) pipeline() *harness.Pipeline {
	return &harness.Pipeline{Redis: s.rdb, Streams: harness.PipelineStreams{MailCommands: s.stream}, MailURL: s.mail.BaseURL}
}

// settled waits until s has nothing in flight: no command pending or unread
// in its stream's group and no delivery queued, sending or retrying.
func (s *mailService) settled(timeout time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), timeout)
	defer cancel()
	if err := s.pipeline().Settled(ctx); err != nil {
		s.t.Fatal(err)
	}
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
func (s *mailService) byKey(key string, timeout time.Duration, statuses ...string) harness.Delivery {
	s.t.Helper()
	var found harness.Delivery
	eventually(s.t, timeout, fmt.Sprintf("delivery %q in %v", key, statuses), func() bool {
		items := s.list(harness.DeliveryQuery{IdempotencyKey: key})
		if len(items) == 0 {
			return false
		}
		for _, st := range statuses {
			if items[0].Status == st {
				found = s.get(items[0].DeliveryID)
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
