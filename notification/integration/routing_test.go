package integration_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"galaxy/harness"
)

// An admin intent becomes one template-mode mail command per configured
// address, with exactly the contract's fields.
func TestAdminIntentBecomesOneMailCommandPerAddress(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com, oncall@example.com",
		"NOTIFICATION_ADMIN_LOCALE":                           "de",
	})
	values := adminIntent("runtime.image_pull_failed", "game-1")
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	values["traceparent"] = traceparent
	// A producer's tracestate and baggage ride on with the trace, through
	// the intent's record in PostgreSQL, to every mail command.
	values["tracestate"] = "vendor=abc"
	values["baggage"] = "galaxy.game_id=game-1"
	id := s.publish(t, values)

	n := s.waitStatus(t, id, 15*time.Second, "routed")
	cmds := s.mailCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("want 2 mail commands, got %d: %v", len(cmds), cmds)
	}
	byRecipient := map[string]map[string]any{}
	for _, c := range cmds {
		var to []string
		if err := json.Unmarshal([]byte(c.Values["to_json"].(string)), &to); err != nil || len(to) != 1 {
			t.Fatalf("to_json %v: %v", c.Values["to_json"], err)
		}
		byRecipient[to[0]] = c.Values
	}
	for _, addr := range []string{"rtm-admin@example.com", "oncall@example.com"} {
		v, ok := byRecipient[addr]
		if !ok {
			t.Fatalf("no command for %s: %v", addr, cmds)
		}
		requestedAt, _ := strconv.ParseInt(v["requested_at_ms"].(string), 10, 64)
		if time.Since(time.UnixMilli(requestedAt)) > time.Minute {
			t.Errorf("requested_at_ms %v is not now", v["requested_at_ms"])
		}
		if !strings.HasPrefix(v["traceparent"].(string), "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("traceparent %v does not continue the intent's trace", v["traceparent"])
		}
		want := map[string]any{
			"source":                  "notification",
			"payload_mode":            "template",
			"template_id":             "runtime.image_pull_failed",
			"locale":                  "de",
			"template_variables_json": values["payload_json"],
			"to_json":                 `["` + addr + `"]`,
			"idempotency_key":         "notification:" + id + "/email:email:" + addr,
			"requested_at_ms":         v["requested_at_ms"],
			"traceparent":             v["traceparent"],
			"tracestate":              "vendor=abc",
			"baggage":                 "galaxy.game_id=game-1",
		}
		if len(v) != len(want) {
			t.Errorf("command for %s has fields %v, want exactly %v", addr, keys(v), keys(want))
		}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("command for %s: %s = %v, want %v", addr, k, v[k], w)
			}
		}
	}

	if n.NotificationType != "runtime.image_pull_failed" || n.Producer != "runtime_manager" || n.AudienceKind != "admin_email" {
		t.Errorf("intent fields: %+v", n)
	}
	if len(n.Routes) != 2 {
		t.Fatalf("routes: %+v", n.Routes)
	}
	for _, r := range n.Routes {
		if r.Status != "routed" || r.Attempts != 1 || r.MailEntryID == nil || r.IdempotencyKey != "notification:"+id+"/"+r.RouteID ||
			r.RouteID != "email:email:"+deref(r.Recipient) || r.RoutedAtMS == nil {
			t.Errorf("route: %+v", r)
		}
	}
	if got := s.metric(t, `notification_routes_total{status="routed"}`); got != 2 {
		t.Errorf("routed metric = %v, want 2", got)
	}
	if got := s.metric(t, `notification_intents_total{outcome="accepted"}`); got != 1 {
		t.Errorf("accepted metric = %v, want 1", got)
	}
	if got := s.metric(t, `notification_handoff_latency_seconds_count`); got != 2 {
		t.Errorf("latency observations = %v, want 2", got)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// No list for the type: the notification is skipped, nothing reaches Mail.
func TestAdminIntentWithoutListIsSkipped(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
	})
	id := s.publish(t, adminIntent("runtime.container_start_failed", "game-2"))
	n := s.waitStatus(t, id, 15*time.Second, "skipped")
	if deref(n.Reason) != "no_admin_recipients" || len(n.Routes) != 0 {
		t.Fatalf("want skipped no_admin_recipients without routes, got %+v", n)
	}
	// A later intent that does route proves the skipped one was not retried.
	id2 := s.publish(t, adminIntent("runtime.image_pull_failed", "game-2"))
	s.waitStatus(t, id2, 15*time.Second, "routed")
	if cmds := s.mailCommands(t); len(cmds) != 1 {
		t.Fatalf("want 1 mail command, got %d", len(cmds))
	}
	// SIGTERM stops every part promptly and cleanly.
	start := time.Now()
	if err := s.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := s.proc.Wait(10 * time.Second)
	if err != nil || code != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("stop: exit %d after %s (%v)\n%s", code, time.Since(start), err, s.proc.LogTail(20))
	}
}

// User routing through the real User Service: two locales, an opted-out user
// and an unknown one.
func TestUserIntentRoutesThroughTheUserService(t *testing.T) {
	us := startUserService(t)
	optedOut := false
	us.create(t, harness.NewUser{UserID: "alice", Email: "alice@example.com", DisplayName: "Alice", Locale: "en"})
	us.create(t, harness.NewUser{UserID: "bruno", Email: "bruno@example.com", DisplayName: "Bruno Ç", Locale: "fr-CA"})
	us.create(t, harness.NewUser{UserID: "carol", Email: "carol@example.com", DisplayName: "Carol", Locale: "de", EmailNotifications: &optedOut})
	s := startNotification(t, map[string]string{"NOTIFICATION_USER_SERVICE_BASE_URL": us.api.BaseURL})
	waitReady(t, s)

	id := s.publish(t, map[string]any{
		"notification_type": "game.turn_ready",
		"producer":          "game_master",
		"audience_kind":     "user",
		"audience_json":     `{"user_ids":["alice","bruno","carol","ghost"]}`,
		"payload_json":      `{"game_id":"g-7","turn":3}`,
		"occurred_at_ms":    "1700000000000",
	})
	n := s.waitStatus(t, id, 15*time.Second, "partially_routed")
	if !strings.HasPrefix(deref(n.Reason), "some_routes_not_routed") {
		t.Errorf("reason %q", deref(n.Reason))
	}
	routes := map[string]harness.NotificationRoute{}
	for _, r := range n.Routes {
		routes[r.RouteID] = r
	}
	check := func(id, status, reason, recipient string) {
		t.Helper()
		r, ok := routes[id]
		if !ok {
			t.Fatalf("no route %s in %+v", id, n.Routes)
		}
		if r.Status != status || deref(r.Reason) != reason || deref(r.Recipient) != recipient {
			t.Errorf("route %s: status %s reason %q recipient %q; want %s %q %q", id, r.Status, deref(r.Reason), deref(r.Recipient), status, reason, recipient)
		}
	}
	check("email:user:alice", "routed", "", "alice@example.com")
	check("email:user:bruno", "routed", "", "bruno@example.com")
	check("email:user:carol", "skipped", "email_opted_out", "carol@example.com")
	check("email:user:ghost", "skipped", "user_not_found", "")

	cmds := s.mailCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("want 2 mail commands, got %d", len(cmds))
	}
	got := map[string][3]string{}
	for _, c := range cmds {
		got[c.Values["to_json"].(string)] = [3]string{c.Values["locale"].(string), c.Values["template_variables_json"].(string), c.Values["idempotency_key"].(string)}
	}
	want := map[string][3]string{
		`["alice@example.com"]`: {"en", `{"game_id":"g-7","turn":3,"user_display_name":"Alice"}`, "notification:" + id + "/email:user:alice"},
		`["bruno@example.com"]`: {"fr-CA", `{"game_id":"g-7","turn":3,"user_display_name":"Bruno Ç"}`, "notification:" + id + "/email:user:bruno"},
	}
	for to, w := range want {
		if got[to] != w {
			t.Errorf("command to %s: got %q, want %q", to, got[to], w)
		}
	}
}

// waitReady waits for /readyz (it includes the User Service).
func waitReady(t *testing.T, s *service) {
	t.Helper()
	eventually(t, 15*time.Second, func() (bool, string) {
		r := s.get(t, "/readyz")
		return r.Status == http.StatusOK, string(r.Body)
	}, s.proc)
}

// The same producer and idempotency key route once; another producer with
// the same key is a different notification.
func TestRepeatedProducerKeyRoutesOnce(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
	})
	first := adminIntent("runtime.image_pull_failed", "game-3")
	first["idempotency_key"] = "start-job-42"
	id1 := s.publish(t, first)
	n1 := s.waitStatus(t, id1, 15*time.Second, "routed")
	id2 := s.publish(t, first)
	other := adminIntent("runtime.image_pull_failed", "game-3")
	other["idempotency_key"] = "start-job-42"
	other["producer"] = "lobby"
	id3 := s.publish(t, other)

	n2 := s.waitStatus(t, id2, 15*time.Second, "skipped")
	if deref(n2.Reason) != "duplicate" || deref(n2.DuplicateOf) != id1 || len(n2.Routes) != 0 {
		t.Fatalf("repeat: want skipped duplicate of %s, got %+v", id1, n2)
	}
	s.waitStatus(t, id3, 15*time.Second, "routed")
	if deref(n1.IdempotencyKey) != "start-job-42" {
		t.Errorf("key not shown: %+v", n1)
	}
	if cmds := s.mailCommands(t); len(cmds) != 2 {
		t.Fatalf("want 2 mail commands (first intent, other producer), got %d", len(cmds))
	}
	if got := s.metric(t, `notification_intents_total{outcome="duplicate"}`); got != 1 {
		t.Errorf("duplicate metric = %v", got)
	}
}

// Malformed intents are recorded rejected with the reason, acknowledged, and
// never hold up the entries behind them; only an entry too large to record
// goes to the dead-letter stream.
func TestMalformedIntentsAreRejectedAndTheStreamFlows(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
	})
	bad := []struct {
		values map[string]any
		reason string
	}{
		{map[string]any{"notification_type": "Runtime Failed", "producer": "p", "audience_kind": "admin_email", "payload_json": "{}", "occurred_at_ms": "1"}, "notification_type:"},
		{map[string]any{"notification_type": "a.b", "producer": "p", "audience_kind": "admin_email", "payload_json": "[1]", "occurred_at_ms": "1"}, "payload_json: not a JSON object"},
		{map[string]any{"notification_type": "a.b", "producer": "p", "audience_kind": "user", "payload_json": "{}", "occurred_at_ms": "1"}, "audience_json: is required"},
		{map[string]any{"notification_type": "a.b", "producer": "p", "audience_kind": "admin_email", "payload_json": "{}", "occurred_at_ms": "soon"}, "occurred_at_ms:"},
		{map[string]any{"garbage": "\x00\xff"}, "notification_type: is required"},
		{map[string]any{"notification_type": "a.b", "producer": "p", "audience_kind": "admin_email", "payload_json": `{"x":"` + strings.Repeat("y", 70000) + `"}`, "occurred_at_ms": "1"}, "payload_json: larger than"},
	}
	var ids []string
	for _, b := range bad {
		ids = append(ids, s.publish(t, b.values))
	}
	huge := s.publish(t, map[string]any{"notification_type": "a.b", "blob": strings.Repeat("z", 2<<20)})
	good := s.publish(t, adminIntent("runtime.image_pull_failed", "game-4"))

	s.waitStatus(t, good, 15*time.Second, "routed")
	for i, id := range ids {
		n := s.waitStatus(t, id, 5*time.Second, "rejected")
		if !strings.HasPrefix(deref(n.Reason), bad[i].reason) {
			t.Errorf("intent %d: reason %q, want prefix %q", i, deref(n.Reason), bad[i].reason)
		}
		if n.RawFields == nil || len(n.Routes) != 0 {
			t.Errorf("intent %d: want raw fields and no routes: %+v", i, n)
		}
	}
	if _, ok := s.notification(t, huge); ok {
		t.Errorf("the oversized entry must not be recorded")
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		dead, err := rdb.XRange(t.Context(), s.intentsStream+":dead", "-", "+").Result()
		if err != nil || len(dead) != 1 || dead[0].Values["dead_source_id"] != huge {
			return false, "dead letters: " + strconv.Itoa(len(dead))
		}
		return true, ""
	}, s.proc)
	// Every entry was acknowledged.
	eventually(t, 10*time.Second, func() (bool, string) {
		p, err := rdb.XPending(t.Context(), s.intentsStream, "notification").Result()
		if err != nil || p.Count != 0 {
			return false, "entries still pending"
		}
		return true, ""
	}, s.proc)
	if rejected, _ := s.list(t, harness.NotificationQuery{Status: "rejected"}); len(rejected) != len(bad) {
		t.Fatalf("rejected list: %d items, want %d: %+v", len(rejected), len(bad), rejected)
	}
	if got := s.metric(t, `notification_intents_total{outcome="rejected"}`); got != float64(len(bad)) {
		t.Errorf("rejected metric = %v", got)
	}
}
