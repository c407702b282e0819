// Package integration_test runs the notification binary against real Redis
// and PostgreSQL (and, for user routing, the real User Service binary) and
// checks what it writes to the mail stream and shows on its API.
//
// One Redis and one PostgreSQL serve the whole package; every test gets its
// own database, its own stream names and its own processes.
package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

var (
	infra harness.Infra
	rdb   *redis.Client
)

func TestMain(m *testing.M) {
	tb := harness.NewPackageTB("notification-integration")
	ctx := context.Background()
	infra = harness.Infra{
		RedisAddr:        harness.StartRedis(ctx, tb).Addr,
		PostgresAdminDSN: harness.StartPostgres(ctx, tb).AdminDSN,
		Binaries:         harness.BuildBinaries(tb, harness.ServicePackages["notification"], harness.ServicePackages["userservice"]),
	}
	rdb = redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true})
	code := m.Run()
	_ = rdb.Close()
	tb.Close()
	os.Exit(code)
}

// service is one notification process of a test with its streams.
type service struct {
	svc           *harness.Service
	proc          *harness.Process
	baseURL       string
	intentsStream string
	mailStream    string
	dsn           string
}

// testEnv is what these tests change of the harness's base environment.
var testEnv = map[string]string{
	// Retries spread a little, so a test sees several attempts.
	"NOTIFICATION_ROUTE_BACKOFF_MAX": "400ms",
	// The SIGTERM test wants a stop well within 5 s.
	"NOTIFICATION_SHUTDOWN_TIMEOUT": "3s",
	// Enough stream workers for these tests' volumes; the default 128 only
	// adds contention on a small machine.
	"NOTIFICATION_INTENTS_CONCURRENCY": "16",
}

// startNotification starts the notification binary with a fresh database and
// fresh stream names, with no User Service unless extra names one; extra adds
// or overrides variables. It waits for /healthz only: /readyz includes the
// User Service (waitReady).
func startNotification(t *testing.T, extra map[string]string) *service {
	t.Helper()
	env := maps.Clone(testEnv)
	maps.Copy(env, extra)
	return newService(harness.StartService(context.Background(), t, harness.ServiceSpec{
		Name: "notification", Infra: infra, Env: env, Wait: harness.WaitHealthy,
	}))
}

func newService(svc *harness.Service) *service {
	return &service{
		svc:           svc,
		proc:          svc.Process,
		baseURL:       svc.URL,
		intentsStream: svc.Streams.Intents,
		mailStream:    svc.Streams.MailCommands,
		dsn:           svc.DSN,
	}
}

// replica starts another notification process on the same database and
// streams as s, with its own HTTP address.
func (s *service) replica(t *testing.T) *service {
	t.Helper()
	return newService(s.svc.Replica(context.Background(), t, nil))
}

// adminIntent is a valid admin intent for the given type and game.
func adminIntent(notificationType, gameID string) map[string]any {
	payload, _ := json.Marshal(map[string]any{
		"game_id": gameID, "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
		"error_message": "manifest unknown", "attempted_at_ms": 1700000000000,
	})
	return map[string]any{
		"notification_type": notificationType,
		"producer":          "runtime_manager",
		"audience_kind":     "admin_email",
		"payload_json":      string(payload),
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

func (s *service) publish(t *testing.T, values map[string]any) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: s.intentsStream, Values: values}).Result()
	if err != nil {
		t.Fatalf("publish intent: %v", err)
	}
	return id
}

// mailCommands returns every entry of the mail stream.
func (s *service) mailCommands(t *testing.T) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), s.mailStream, "-", "+").Result()
	if err != nil {
		t.Fatalf("read mail stream: %v", err)
	}
	return msgs
}

// notification mirrors the API's item (lenient: the API may grow fields).
type notification struct {
	IntentID         string          `json:"intent_entry_id"`
	NotificationType string          `json:"notification_type"`
	Producer         string          `json:"producer"`
	AudienceKind     string          `json:"audience_kind"`
	Payload          json.RawMessage `json:"payload"`
	IdempotencyKey   *string         `json:"idempotency_key"`
	Status           string          `json:"status"`
	Reason           *string         `json:"reason"`
	DuplicateOf      *string         `json:"duplicate_of"`
	RawFields        map[string]any  `json:"raw_fields"`
	CreatedAtMS      int64           `json:"created_at_ms"`
	UpdatedAtMS      int64           `json:"updated_at_ms"`
	Routes           []route         `json:"routes"`
}

type route struct {
	RouteID        string  `json:"route_id"`
	UserID         *string `json:"user_id"`
	Recipient      *string `json:"recipient"`
	Locale         *string `json:"locale"`
	Status         string  `json:"status"`
	Reason         *string `json:"reason"`
	Attempts       int     `json:"attempts"`
	LastError      *string `json:"last_error"`
	IdempotencyKey string  `json:"idempotency_key"`
	MailEntryID    *string `json:"mail_entry_id"`
	RoutedAtMS     *int64  `json:"routed_at_ms"`
	CreatedAtMS    int64   `json:"created_at_ms"`
	UpdatedAtMS    int64   `json:"updated_at_ms"`
}

func (r route) reason() string    { return deref(r.Reason) }
func (r route) recipient() string { return deref(r.Recipient) }
func (n notification) reason() string {
	return deref(n.Reason)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// get fetches path from the service's API and returns status and body.
func (s *service) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Get(s.baseURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// notification returns the API's record of intentID, or ok=false on 404.
func (s *service) notification(t *testing.T, intentID string) (notification, bool) {
	t.Helper()
	code, body := s.get(t, "/api/v1/internal/notifications/"+url.PathEscape(intentID))
	if code == http.StatusNotFound {
		return notification{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("GET notification %s: %d %s", intentID, code, body)
	}
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatalf("decode notification: %v\n%s", err, body)
	}
	return n, true
}

// waitStatus waits until intentID's notification has one of the statuses.
func (s *service) waitStatus(t *testing.T, intentID string, timeout time.Duration, statuses ...string) notification {
	t.Helper()
	var last notification
	eventually(t, timeout, func() (bool, string) {
		n, ok := s.notification(t, intentID)
		if !ok {
			return false, "not recorded yet"
		}
		last = n
		for _, st := range statuses {
			if n.Status == st {
				return true, ""
			}
		}
		b, _ := json.Marshal(n)
		return false, "status " + n.Status + ": " + string(b)
	}, s.proc)
	return last
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string), procs ...*harness.Process) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				fmt.Fprintf(&logs, "\n--- %s log ---\n%s", p.Name(), p.LogTail(60))
			}
			t.Fatalf("not within %s: %s%s", timeout, why, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric returns the value of one series on /metrics (0 when absent).
func (s *service) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := s.get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series)), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// userService is a running User Service with its base URL.
type userService struct {
	proc    *harness.Process
	baseURL string
}

func startUserService(t *testing.T) *userService {
	t.Helper()
	svc := harness.StartService(context.Background(), t, harness.ServiceSpec{
		Name: "userservice", Infra: infra, Env: map[string]string{"USERSERVICE_LOG_LEVEL": "warn"},
	})
	return &userService{proc: svc.Process, baseURL: svc.URL}
}

func (u *userService) create(t *testing.T, user map[string]any) {
	t.Helper()
	body, _ := json.Marshal(user)
	resp, err := httpClient.Post(u.baseURL+"/api/v1/internal/users", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user %s: %d %s", body, resp.StatusCode, b)
	}
}
