package integration_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// The route timers of the outage tests: a route whose failures all counted
// would be dead after outageMaxAttempts attempts, that is within
// outageBudget of its first failure. Each outage below lasts longer than
// that budget, as seen by the clock and by the routes themselves (more
// attempts than the budget allows), so it proves the routes wait out a
// dependency instead of dying.
const (
	outageBackoffMin  = 100 * time.Millisecond
	outageBackoffMax  = 400 * time.Millisecond
	outageMaxAttempts = 5
)

// outageEnv has routes wait out a dependency (NOTIFICATION_ROUTE_UNAVAILABLE_FOR,
// far longer than any outage here); contractEnv keeps the contract's rule,
// under which every failed hand-off counts.
var (
	contractEnv = map[string]string{
		"NOTIFICATION_ROUTE_BACKOFF_MIN":  outageBackoffMin.String(),
		"NOTIFICATION_ROUTE_BACKOFF_MAX":  outageBackoffMax.String(),
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS": strconv.Itoa(outageMaxAttempts),
	}
	outageEnv = func() map[string]string {
		env := maps.Clone(contractEnv)
		env["NOTIFICATION_ROUTE_UNAVAILABLE_FOR"] = "5m"
		return env
	}()
)

// outageBudget is the longest a route can be retried before its attempts
// run out (docs/notification.md, "Retry policy").
var outageBudget = harness.BackoffBudget(outageBackoffMin, outageBackoffMax, outageMaxAttempts)

// outageUsers creates n users and returns their IDs.
func outageUsers(t *testing.T, us *userService, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = harness.UniqueName("outage")
		us.create(t, harness.NewUser{UserID: ids[i], Email: ids[i] + "@example.com", DisplayName: "Outage " + strconv.Itoa(i), Locale: "en"})
	}
	return ids
}

// publishUserIntents publishes one user intent per user, count times over,
// to stream on client, and returns the intent IDs with the route ID each
// one has.
func publishUserIntents(t *testing.T, client *redis.Client, stream string, userIDs []string, count int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := range count {
		uid := userIDs[i%len(userIDs)]
		id, err := client.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: map[string]any{
			"notification_type": "game.turn_ready", "producer": "game_master", "audience_kind": "user",
			"audience_json": `{"user_ids":["` + uid + `"]}`, "payload_json": `{"turn":` + strconv.Itoa(i) + `}`,
			"occurred_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
		}}).Result()
		if err != nil {
			t.Fatalf("publish intent: %v", err)
		}
		out[id] = "email:user:" + uid
	}
	return out
}

// waitOutOutage waits until every route of intents has been tried more
// often than outageMaxAttempts allows and the outage has lasted longer than
// the route budget, failing at once when a route goes dead. cause is what
// every route's last error must name by then. since gives, per intent, the
// attempts a route had when the outage began (nil: none).
func waitOutOutage(t *testing.T, s *service, intents map[string]string, downAt time.Time, since map[string]int, cause string) {
	t.Helper()
	budget := outageBudget
	eventually(t, 20*budget+20*time.Second, func() (bool, string) {
		for id := range intents {
			n, ok := s.notification(t, id)
			if !ok || len(n.Routes) != 1 {
				return false, id + ": not recorded"
			}
			r := n.Routes[0]
			if r.Status == "dead" || n.Status == "dead" {
				t.Fatalf("route %s of %s dead after %s of outage (route budget %s): attempts=%d reason=%q last_error=%q",
					r.RouteID, id, time.Since(downAt).Round(time.Millisecond), budget, r.Attempts, deref(r.Reason), deref(r.LastError))
			}
			if r.Status != "pending" {
				t.Fatalf("route %s of %s %s during the outage: %+v", r.RouteID, id, r.Status, r)
			}
			if r.Attempts-since[id] <= outageMaxAttempts || !strings.Contains(deref(r.LastError), cause) {
				return false, fmt.Sprintf("%s: attempts=%d (at the outage %d) last_error=%q", id, r.Attempts, since[id], deref(r.LastError))
			}
		}
		if elapsed := time.Since(downAt); elapsed <= budget+outageBackoffMax {
			return false, fmt.Sprintf("outage %s, not yet past the route budget %s", elapsed, budget)
		}
		return true, ""
	}, s.proc)
}

// expectRoutedOnce waits until every intent is routed and checks that the
// mail stream holds exactly one command per route and nothing else.
func expectRoutedOnce(t *testing.T, s *service, client *redis.Client, intents map[string]string) {
	t.Helper()
	for id := range intents {
		n := s.waitStatus(t, id, 30*time.Second, "routed", "dead", "partially_routed", "skipped")
		if n.Status != "routed" || n.Routes[0].Status != "routed" {
			t.Fatalf("%s after the outage: %s, route %+v", id, n.Status, n.Routes[0])
		}
	}
	cmds, err := client.XRange(t.Context(), s.mailStream, "-", "+").Result()
	if err != nil {
		t.Fatalf("read mail stream: %v", err)
	}
	seen := map[string]int{}
	for _, c := range cmds {
		seen[c.Values["idempotency_key"].(string)]++
	}
	for id, route := range intents {
		if k := "notification:" + id + "/" + route; seen[k] != 1 {
			t.Errorf("%d commands with key %s", seen[k], k)
		}
	}
	if len(cmds) != len(intents) {
		t.Errorf("mail stream holds %d commands for %d routes", len(cmds), len(intents))
	}
}

// The User Service is down for longer than a route's whole backoff budget:
// its unavailability is no failure of the routes, so none of them dies;
// each mail command is written once the service is back.
func TestUserServiceOutageLongerThanTheRouteBudgetKillsNoRoute(t *testing.T) {
	us := startUserService(t)
	userIDs := outageUsers(t, us, 4)
	env := maps.Clone(outageEnv)
	env["NOTIFICATION_USER_SERVICE_BASE_URL"] = us.api.BaseURL
	s := startNotification(t, env)
	waitReady(t, s)

	if err := us.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	intents := publishUserIntents(t, rdb, s.intentsStream, userIDs, 20)
	waitOutOutage(t, s, intents, downAt, nil, "user service")
	t.Logf("user service down %s; route budget %s", time.Since(downAt).Round(time.Millisecond),
		outageBudget)

	if err := us.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	expectWaitedOut(t, s, rdb, intents, "user_service")
}

// Redis is unreachable for longer than a route's whole backoff budget while
// routes wait for their hand-off: none of them dies, and each mail command
// is written exactly once when Redis is back. The routes are caught in
// flight deterministically: the User Service is down first, so every route
// is recorded and waiting for a retry when Redis is killed, and back before
// the retries that then fail on the mail stream alone.
func TestRedisOutageLongerThanTheRouteBudgetKillsNoRoute(t *testing.T) {
	ctx := context.Background()
	r := harness.StartDurableRedis(ctx, t)
	own := infra
	own.RedisAddr, own.RedisContainerID = r.Addr, r.ContainerID
	client := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = client.Close() })

	us := startUserService(t)
	userIDs := outageUsers(t, us, 4)
	env := maps.Clone(testEnv)
	maps.Copy(env, outageEnv)
	env["NOTIFICATION_USER_SERVICE_BASE_URL"] = us.api.BaseURL
	s := newService(harness.StartService(ctx, t, harness.ServiceSpec{
		Name: "notification", Infra: own, Env: env, Wait: harness.WaitHealthy,
	}))
	waitReady(t, s)

	if err := us.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	intents := publishUserIntents(t, client, s.intentsStream, userIDs, 20)
	since := map[string]int{}
	eventually(t, 15*time.Second, func() (bool, string) {
		for id := range intents {
			n, ok := s.notification(t, id)
			if !ok || len(n.Routes) != 1 || n.Routes[0].Attempts == 0 {
				return false, id + ": not tried yet"
			}
		}
		return true, ""
	}, s.proc)

	if err := r.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	for id := range intents {
		n, _ := s.notification(t, id)
		since[id] = n.Routes[0].Attempts
	}
	if err := us.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	waitOutOutage(t, s, intents, downAt, since, "mail stream")
	t.Logf("redis down %s; route budget %s", time.Since(downAt).Round(time.Millisecond),
		outageBudget)

	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	expectWaitedOut(t, s, client, intents, "redis")
}

// The wait for a dependency is bounded: a route whose hand-off still finds
// the User Service unreachable NOTIFICATION_ROUTE_UNAVAILABLE_FOR after its
// intent entered its stream is dead, with a reason that says so, although
// it was tried more often than NOTIFICATION_ROUTE_MAX_ATTEMPTS.
func TestRouteDiesWhenADependencyStaysUnavailableTooLong(t *testing.T) {
	env := maps.Clone(outageEnv)
	env["NOTIFICATION_USER_SERVICE_BASE_URL"] = "http://" + closedAddress(t)
	env["NOTIFICATION_ROUTE_UNAVAILABLE_FOR"] = "3s"
	s := startNotification(t, env)
	publishedAt := time.Now()
	n := s.waitStatus(t, s.publish(t, userIntent("u1")), 30*time.Second, "dead")
	waited := time.Since(publishedAt)
	r := n.Routes[0]
	if r.Status != "dead" || deref(r.Reason) != "dependency_unavailable" || r.Attempts <= outageMaxAttempts ||
		!strings.Contains(deref(r.LastError), "user service") {
		t.Fatalf("dead route: %+v reason=%q last_error=%q", r, deref(r.Reason), deref(r.LastError))
	}
	if got := deref(n.Reason); got != "routes_dead: dependency_unavailable=1" {
		t.Errorf("notification reason = %q", got)
	}
	if waited < 3*time.Second {
		t.Fatalf("dead after %s, before NOTIFICATION_ROUTE_UNAVAILABLE_FOR 3s", waited)
	}
	if got := s.metric(t, `notification_routes_total{status="dead"}`); got != 1 {
		t.Errorf("dead metric = %v", got)
	}
}

// Without NOTIFICATION_ROUTE_UNAVAILABLE_FOR the contract's rule holds
// (CONTRACTS §4): a hand-off failed because the User Service is down counts
// like any other, and a route whose attempts run out during the outage is
// dead, saying why — what an operator then sees and retries.
func TestDependencyOutageSpendsTheAttemptsByTheContract(t *testing.T) {
	env := maps.Clone(contractEnv)
	env["NOTIFICATION_USER_SERVICE_BASE_URL"] = "http://" + closedAddress(t)
	s := startNotification(t, env)
	n := s.waitStatus(t, s.publish(t, userIntent("u1")), 30*time.Second, "dead")
	r := n.Routes[0]
	if r.Status != "dead" || deref(r.Reason) != "attempts_exhausted" || r.Attempts != outageMaxAttempts ||
		!strings.Contains(deref(r.LastError), "user service") {
		t.Fatalf("dead route: %+v reason=%q last_error=%q", r, deref(r.Reason), deref(r.LastError))
	}
	if got := s.metric(t, `notification_handoff_unavailable_total{dependency="user_service"}`); got != outageMaxAttempts {
		t.Errorf("unavailable metric = %v, want %d (every attempt found the User Service down)", got, outageMaxAttempts)
	}
}

// userIntent is a user intent for one user, occurring now.
func userIntent(userID string) map[string]any {
	return map[string]any{
		"notification_type": "game.turn_ready", "producer": "game_master", "audience_kind": "user",
		"audience_json": `{"user_ids":["` + userID + `"]}`, "payload_json": `{}`,
		"occurred_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// expectWaitedOut checks, once dependency is back, that every route of
// intents was routed once with no route dead, and that the attempts that
// found dependency unavailable were counted as such.
func expectWaitedOut(t *testing.T, s *service, client *redis.Client, intents map[string]string, dependency string) {
	t.Helper()
	upAt := time.Now()
	expectRoutedOnce(t, s, client, intents)
	t.Logf("every route routed %s after %s was back", time.Since(upAt).Round(time.Millisecond), dependency)
	if got := s.metric(t, `notification_routes_total{status="dead"}`); got != 0 {
		t.Errorf("dead metric = %v", got)
	}
	series := `notification_handoff_unavailable_total{dependency="` + dependency + `"}`
	if got := s.metric(t, series); got < float64(len(intents)*outageMaxAttempts) {
		t.Errorf("%s = %v, want at least %d", series, got, len(intents)*outageMaxAttempts)
	}
}
