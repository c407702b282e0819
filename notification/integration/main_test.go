// Package integration_test runs the notification binary against real Redis
// and PostgreSQL (and, for user routing, the real User Service binary) and
// checks what it writes to the mail stream and shows on its API.
//
// One Redis and one PostgreSQL serve the whole package; every test gets its
// own database, its own stream names and its own processes.
package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
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
	api           *harness.NotificationClient
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
		api:           harness.NewNotificationClient(svc.URL, ""),
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// get sends GET path to the service and returns the answer whatever its
// status, for the endpoints outside the typed client (/readyz, /metrics).
func (s *service) get(t *testing.T, path string) harness.Response {
	t.Helper()
	r, err := harness.Do(t.Context(), harness.Request{URL: s.api.BaseURL + path, Token: s.api.Token})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// getError GETs path and decodes nothing: the error is nil for a 200 and an
// *harness.APIError for any other answer. It is for queries the typed
// client cannot spell (unknown or repeated parameters).
func (s *service) getError(t *testing.T, path string) error {
	t.Helper()
	_, err := harness.DoJSON(t.Context(), harness.Request{URL: s.api.BaseURL + path, Token: s.api.Token}, nil)
	return err
}

// isAPIError reports whether err is an answer with status and, when code is
// not empty, the contract error code.
func isAPIError(err error, status int, code string) bool {
	return harness.StatusOf(err) == status && (code == "" || harness.ErrorCodeOf(err) == code)
}

// notification returns the API's record of intentID, or ok=false on 404.
func (s *service) notification(t *testing.T, intentID string) (harness.Notification, bool) {
	t.Helper()
	n, err := s.api.Notification(t.Context(), intentID)
	if harness.StatusOf(err) == http.StatusNotFound {
		return harness.Notification{}, false
	}
	if err != nil {
		t.Fatalf("GET notification %s: %v", intentID, err)
	}
	return n, true
}

// list returns one page of the notifications matching q and the next
// page's cursor.
func (s *service) list(t *testing.T, q harness.NotificationQuery) ([]harness.Notification, string) {
	t.Helper()
	items, next, err := s.api.Notifications(t.Context(), q)
	if err != nil {
		t.Fatalf("list %+v: %v", q, err)
	}
	return items, next
}

// waitStatus waits until intentID's notification has one of the statuses.
func (s *service) waitStatus(t *testing.T, intentID string, timeout time.Duration, statuses ...string) harness.Notification {
	t.Helper()
	var last harness.Notification
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
	m, err := harness.ScrapeMetrics(t.Context(), s.api.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return m.Value(series)
}

// userService is a running User Service and a client of its API.
type userService struct {
	proc *harness.Process
	api  *harness.UserClient
}

func startUserService(t *testing.T) *userService {
	t.Helper()
	svc := harness.StartService(context.Background(), t, harness.ServiceSpec{
		Name: "userservice", Infra: infra, Env: map[string]string{"USERSERVICE_LOG_LEVEL": "warn"},
	})
	return &userService{proc: svc.Process, api: harness.NewUserClient(svc.URL, "")}
}

func (u *userService) create(t *testing.T, user harness.NewUser) {
	t.Helper()
	if _, err := u.api.Create(t.Context(), user); err != nil {
		t.Fatalf("create user %+v: %v", user, err)
	}
}
