package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// The User Service is down when the intent arrives: the route is retried with
// backoff, /readyz says so, and once the service is back the mail goes out.
func TestUserServiceDownThenUp(t *testing.T) {
	us := startUserService(t)
	us.create(t, harness.NewUser{UserID: "dora", Email: "dora@example.com", DisplayName: "Dora", Locale: "es"})
	s := startNotification(t, map[string]string{
		"NOTIFICATION_USER_SERVICE_BASE_URL": us.api.BaseURL,
		"NOTIFICATION_ROUTE_BACKOFF_MIN":     "200ms",
		"NOTIFICATION_ROUTE_BACKOFF_MAX":     "500ms",
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":    "50",
	})
	waitReady(t, s)
	if err := us.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		r := s.get(t, "/readyz")
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "user_service"), string(r.Body)
	}, s.proc)

	id := s.publish(t, map[string]any{
		"notification_type": "game.turn_ready", "producer": "game_master", "audience_kind": "user",
		"audience_json": `{"user_ids":["dora"]}`, "payload_json": `{"turn":1}`, "occurred_at_ms": "1700000000000",
	})
	eventually(t, 15*time.Second, func() (bool, string) {
		n, ok := s.notification(t, id)
		if !ok || len(n.Routes) != 1 {
			return false, "not recorded"
		}
		r := n.Routes[0]
		return n.Status == "pending" && r.Attempts >= 2 && strings.Contains(deref(r.LastError), "user service"),
			fmt.Sprintf("%s attempts=%d last_error=%q", n.Status, r.Attempts, deref(r.LastError))
	}, s.proc)
	// The intent was acknowledged although its route waits: it is recorded
	// and scheduled.
	if p, err := rdb.XPending(t.Context(), s.intentsStream, "notification").Result(); err != nil || p.Count != 0 {
		t.Fatalf("intent not acknowledged while its route waits for a retry: %+v %v", p, err)
	}
	if len(s.mailCommands(t)) != 0 {
		t.Fatal("nothing may reach Mail before the user is resolved")
	}

	if err := us.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	n := s.waitStatus(t, id, 20*time.Second, "routed")
	r := n.Routes[0]
	if deref(r.Recipient) != "dora@example.com" || deref(r.Locale) != "es" || r.Attempts < 3 {
		t.Fatalf("route after recovery: %+v", r)
	}
	cmds := s.mailCommands(t)
	if len(cmds) != 1 || cmds[0].Values["idempotency_key"] != "notification:"+id+"/email:user:dora" {
		t.Fatalf("want one command for dora, got %v", cmds)
	}
	if got := s.metric(t, `notification_routes_total{status="retry"}`); got < 2 {
		t.Errorf("retry metric = %v", got)
	}
}

// A route whose attempts run out is dead, visible on the API and the metrics.
// The failure must be the route's own — a User Service refusing the call —
// for an unreachable one is waited out (outage_test.go).
func TestRouteDiesAfterMaxAttempts(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"invalid_request"}}`, http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)
	s := startNotification(t, map[string]string{
		"NOTIFICATION_USER_SERVICE_BASE_URL": refusing.URL,
		"NOTIFICATION_ROUTE_BACKOFF_MIN":     "50ms",
		"NOTIFICATION_ROUTE_BACKOFF_MAX":     "100ms",
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":    "3",
	})
	id := s.publish(t, map[string]any{
		"notification_type": "game.turn_ready", "producer": "game_master", "audience_kind": "user",
		"audience_json": `{"user_ids":["u1"]}`, "payload_json": `{}`, "occurred_at_ms": "1",
	})
	n := s.waitStatus(t, id, 15*time.Second, "dead")
	r := n.Routes[0]
	if r.Status != "dead" || r.Attempts != 3 || deref(r.Reason) != "attempts_exhausted" || !strings.Contains(deref(r.LastError), "user service") {
		t.Fatalf("dead route: %+v", r)
	}
	if got := s.metric(t, `notification_routes_total{status="dead"}`); got != 1 {
		t.Errorf("dead metric = %v", got)
	}
	dead, _ := s.list(t, harness.NotificationQuery{Status: "dead"})
	if !slices.ContainsFunc(dead, func(n harness.Notification) bool { return n.IntentEntryID == id }) {
		t.Errorf("dead list lacks %s: %+v", id, dead)
	}
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:1"
}

// Writing to the mail stream fails (the key holds a string, so XADD answers
// WRONGTYPE): the route is retried and delivered once the stream is usable.
func TestMailStreamWriteFailureIsRetried(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":                     "100",
	})
	if err := rdb.Set(t.Context(), s.mailStream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	id := s.publish(t, adminIntent("runtime.image_pull_failed", "game-5"))
	eventually(t, 10*time.Second, func() (bool, string) {
		n, ok := s.notification(t, id)
		if !ok || len(n.Routes) != 1 {
			return false, "not recorded"
		}
		r := n.Routes[0]
		return r.Attempts >= 2 && strings.Contains(deref(r.LastError), "WRONGTYPE"), fmt.Sprintf("%+v", r)
	}, s.proc)
	if err := rdb.Del(t.Context(), s.mailStream).Err(); err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, id, 10*time.Second, "routed")
	if cmds := s.mailCommands(t); len(cmds) != 1 {
		t.Fatalf("want 1 command, got %d", len(cmds))
	}
}

// publishMany adds n admin intents in pipelined batches and returns their IDs.
func publishMany(t *testing.T, stream string, n int, notificationType string) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 500 {
		pipe := rdb.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+500, n); i++ {
			cmds = append(cmds, pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: adminIntent(notificationType, "game-"+strconv.Itoa(i))}))
		}
		if _, err := pipe.Exec(t.Context()); err != nil {
			t.Fatalf("publish: %v", err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
	}
	return ids
}

// countStatuses counts notifications by status straight from PostgreSQL.
func countStatuses(t *testing.T, dsn string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT status, count(*) FROM notifications GROUP BY status`)
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	out := map[string]int{}
	var st string
	var c int
	_, err = pgx.ForEachRow(rows, []any{&st, &c}, func() error { out[st] = c; return nil })
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return out
}

// checkExactlyOnce asserts that the mail stream holds one command per
// expected key and (better) no repeated command at all.
func checkExactlyOnce(t *testing.T, s *service, intentIDs []string, routeID string) {
	t.Helper()
	cmds := s.mailCommands(t)
	seen := map[string]int{}
	for _, c := range cmds {
		seen[c.Values["idempotency_key"].(string)]++
	}
	missing := 0
	for _, id := range intentIDs {
		if seen["notification:"+id+"/"+routeID] == 0 {
			missing++
		}
	}
	if missing > 0 || len(seen) != len(intentIDs) {
		t.Fatalf("want %d distinct keys, got %d (%d expected keys missing)", len(intentIDs), len(seen), missing)
	}
	t.Logf("mail stream: %d commands, %d distinct keys", len(cmds), len(seen))
	if len(cmds) != len(seen) {
		t.Errorf("%d commands repeat a key (Mail would drop them, but none should be written)", len(cmds)-len(seen))
	}
}

// The process is killed (SIGKILL) in the middle of a stream of intents and
// started again: every route is handed to Mail, once.
func TestCrashMidBatchHandsEveryCommandOnce(t *testing.T) {
	const total = 3000
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
		"NOTIFICATION_STREAM_CLAIM_IDLE":                      "1s",
		"NOTIFICATION_LOG_LEVEL":                              "warn",
	})
	ids := publishMany(t, s.intentsStream, total, "runtime.image_pull_failed")
	const rounds = 4
	for round := 1; round <= rounds; round++ {
		// Kill as soon as a share of this round's work is done, so the kill
		// lands mid-batch.
		target := int64(round * total / (rounds + 2))
		eventually(t, 60*time.Second, func() (bool, string) {
			n, _ := rdb.XLen(t.Context(), s.mailStream).Result()
			return n >= target, fmt.Sprintf("%d mail commands", n)
		}, s.proc)
		if err := s.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		n, _ := rdb.XLen(t.Context(), s.mailStream).Result()
		t.Logf("round %d: killed with %d mail commands written", round, n)
		if err := s.proc.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 90*time.Second, func() (bool, string) {
		c := countStatuses(t, s.dsn)
		return c["routed"] == total, fmt.Sprintf("%v", c)
	}, s.proc)
	checkExactlyOnce(t, s, ids, "email:email:rtm-admin@example.com")
	t.Logf("commands found already written after the last restart: %v", s.metric(t, "notification_recovered_commands_total"))
}

// Two processes in one consumer group share the intents without writing any
// mail command twice.
func TestTwoReplicasShareTheLoad(t *testing.T) {
	const total = 2000
	a := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
		"NOTIFICATION_LOG_LEVEL":                              "warn",
	})
	b := a.replica(t)
	var wg sync.WaitGroup
	var ids []string
	wg.Go(func() { ids = publishMany(t, a.intentsStream, total, "runtime.image_pull_failed") })
	wg.Wait()
	eventually(t, 60*time.Second, func() (bool, string) {
		c := countStatuses(t, a.dsn)
		return c["routed"] == total, fmt.Sprintf("%v", c)
	}, a.proc, b.proc)
	checkExactlyOnce(t, a, ids, "email:email:rtm-admin@example.com")
	ca := a.metric(t, `notification_intents_total{outcome="accepted"}`)
	cb := b.metric(t, `notification_intents_total{outcome="accepted"}`)
	t.Logf("replica a recorded %v intents, replica b %v", ca, cb)
	if ca == 0 || cb == 0 || ca+cb != total {
		t.Errorf("want both replicas to take a share summing to %d, got %v + %v", total, ca, cb)
	}
}

// PostgreSQL is down far longer than the stream's delivery budget
// (NOTIFICATION_STREAM_MAX_DELIVERIES × NOTIFICATION_STREAM_CLAIM_IDLE):
// the intents that arrive meanwhile wait, are recorded once it is back, and
// none is dead-lettered — an outage is not the entries' fault.
func TestPostgresOutageLongerThanTheDeliveryBudgetDeadLettersNothing(t *testing.T) {
	ctx := t.Context()
	own := harness.StartPostgres(ctx, t)
	dsn, err := own.CreateDatabase(ctx, "notification_outage")
	if err != nil {
		t.Fatal(err)
	}
	s := startNotification(t, map[string]string{
		"NOTIFICATION_POSTGRES_DSN":                           dsn,
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
		"NOTIFICATION_STREAM_CLAIM_IDLE":                      "300ms",
		"NOTIFICATION_STREAM_MAX_DELIVERIES":                  "2",
	})
	if err := own.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, s.publish(t, adminIntent("runtime.image_pull_failed", "outage-"+strconv.Itoa(i))))
	}
	// Ten times the budget of 2 × 300 ms.
	time.Sleep(6 * time.Second)
	if err := own.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		s.waitStatus(t, id, 30*time.Second, "routed")
	}
	if n, err := rdb.XLen(ctx, s.intentsStream+":dead").Result(); err != nil || n != 0 {
		t.Fatalf("dead letters: %d, %v; want none", n, err)
	}
	if p, err := rdb.XPending(ctx, s.intentsStream, "notification").Result(); err != nil || p.Count != 0 {
		t.Fatalf("pending after recovery: %+v %v", p, err)
	}
	if got := len(s.mailCommands(t)); got != len(ids) {
		t.Fatalf("%d mail commands, want %d", got, len(ids))
	}
}
