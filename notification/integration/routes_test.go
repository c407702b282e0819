package integration_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// usersIntent is a valid user intent for users.
func usersIntent(users ...string) map[string]any {
	audience, _ := json.Marshal(map[string]any{"user_ids": users})
	return map[string]any{
		"notification_type": "runtime.image_pull_failed",
		"producer":          "runtime_manager",
		"audience_kind":     "user",
		"audience_json":     string(audience),
		"payload_json":      `{"game_id":"g-dead"}`,
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// Dead routes are listed newest notification first with cursor paging; a
// retried route is handed to Mail once, with its own idempotency key, and a
// route that is not dead is refused with 409 and left as it is.
func TestDeadRoutesListedAndRetried(t *testing.T) {
	users := startUserService(t)
	for _, id := range []string{"dana", "eli", "fay"} {
		users.create(t, harness.NewUser{UserID: id, Email: id + "@example.com", DisplayName: strings.ToUpper(id), Locale: "en"})
	}
	s := startNotification(t, map[string]string{
		"NOTIFICATION_USER_SERVICE_BASE_URL":                  users.api.BaseURL,
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":                     "2",
		"NOTIFICATION_ROUTE_BACKOFF_MIN":                      "50ms",
		"NOTIFICATION_ROUTE_BACKOFF_MAX":                      "100ms",
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "ops@example.com",
	})
	routed := s.publish(t, adminIntent("runtime.image_pull_failed", "g-ok"))
	s.waitStatus(t, routed, 15*time.Second, "routed")

	if err := users.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	first := s.publish(t, usersIntent("dana"))
	second := s.publish(t, usersIntent("eli", "fay"))
	for _, id := range []string{first, second} {
		n := s.waitStatus(t, id, 15*time.Second, "dead")
		for _, r := range n.Routes {
			if r.Status != "dead" || r.Attempts != 2 || !strings.Contains(deref(r.LastError), "user service") {
				t.Fatalf("route %+v of %s: want dead after 2 attempts with a user service error", r, id)
			}
		}
	}

	// Newest notification first, then by route ID, two a page.
	want := []string{second + "/email:user:eli", second + "/email:user:fay", first + "/email:user:dana"}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		items, next, err := s.api.DeadRoutes(t.Context(), 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			got = append(got, it.IntentEntryID+"/"+it.RouteID)
			if it.Status != "dead" || it.NotificationType != "runtime.image_pull_failed" || it.Producer != "runtime_manager" ||
				deref(it.Reason) != "attempts_exhausted" || it.Attempts != 2 {
				t.Errorf("dead route %+v", it)
			}
		}
		if next == "" {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("dead routes %v, want %v", got, want)
	}

	// Retried while the User Service is still down, the route dies again
	// after its attempts: each retry is a full new budget.
	n, err := s.api.RetryRoute(t.Context(), first, "email:user:dana")
	if err != nil {
		t.Fatal(err)
	}
	if n.Status != "pending" || n.Reason != nil || n.Routes[0].Status != "pending" || n.Routes[0].Attempts != 0 {
		t.Fatalf("after the retry: %+v", n)
	}
	eventually(t, 15*time.Second, func() (bool, string) {
		n, _ := s.notification(t, first)
		return n.Status == "dead" && n.Routes[0].Attempts == 2, n.Status
	}, s.proc)

	if err := users.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	harness.WaitForHTTPStatus(t, users.proc, users.api.BaseURL+"/healthz", http.StatusOK)
	if _, err := s.api.RetryRoute(t.Context(), first, "email:user:dana"); err != nil {
		t.Fatal(err)
	}
	// One route of the partially failed notification: it is routed, the
	// other stays dead and the notification says so.
	if _, err := s.api.RetryRoute(t.Context(), second, "email:user:fay"); err != nil {
		t.Fatal(err)
	}
	n = s.waitStatus(t, first, 15*time.Second, "routed")
	if r := n.Routes[0]; r.Status != "routed" || r.Attempts != 1 || r.MailEntryID == nil || deref(r.Recipient) != "dana@example.com" {
		t.Fatalf("retried route: %+v", r)
	}
	n = s.waitStatus(t, second, 15*time.Second, "partially_routed")
	if deref(n.Reason) != "some_routes_not_routed: attempts_exhausted=1" {
		t.Errorf("partially routed reason %q", deref(n.Reason))
	}
	keys := map[string]int{}
	for _, m := range s.mailCommands(t) {
		k, _ := m.Values["idempotency_key"].(string)
		keys[k]++
	}
	for _, k := range []string{"notification:" + first + "/email:user:dana", "notification:" + second + "/email:user:fay"} {
		if keys[k] != 1 {
			t.Errorf("mail commands with key %s: %d, want 1 (all: %v)", k, keys[k], keys)
		}
	}
	if keys["notification:"+second+"/email:user:eli"] != 0 {
		t.Errorf("the route not retried was handed off: %v", keys)
	}
	items, next, err := s.api.DeadRoutes(t.Context(), 0, "")
	if err != nil || next != "" || len(items) != 1 || items[0].RouteID != "email:user:eli" {
		t.Errorf("dead routes after the retries: %+v %q %v", items, next, err)
	}

	// A route that is not dead: 409 naming its status, nothing changes.
	before, _ := s.notification(t, first)
	_, err = s.api.RetryRoute(t.Context(), first, "email:user:dana")
	if !isAPIError(err, http.StatusConflict, "route_not_dead") || !strings.Contains(err.Error(), "is routed, not dead") {
		t.Errorf("retry of a routed route: %v", err)
	}
	if after, _ := s.notification(t, first); after.UpdatedAtMS != before.UpdatedAtMS || after.Routes[0].Attempts != 1 {
		t.Errorf("a refused retry changed the notification: %+v", after)
	}
	if _, err := s.api.RetryRoute(t.Context(), routed, "email:email:nobody@example.com"); !isAPIError(err, http.StatusNotFound, "not_found") {
		t.Errorf("unknown route: %v", err)
	}
	if _, err := s.api.RetryRoute(t.Context(), "1-0", "email:user:dana"); !isAPIError(err, http.StatusNotFound, "not_found") {
		t.Errorf("unknown notification: %v", err)
	}
	for _, path := range []string{
		"/api/v1/internal/notifications/nope/routes/email:user:dana/retry",
		"/api/v1/internal/notifications/" + first + "/routes/dana/retry",
		"/api/v1/internal/notifications/" + first + "/routes/email:user:dana/retry?now=1",
	} {
		resp, err := s.api.Do(t.Context(), http.MethodPost, path, nil)
		if err != nil || resp.Status != http.StatusBadRequest {
			t.Errorf("POST %s: %d %v, want 400", path, resp.Status, err)
		}
	}
	for _, q := range []string{"", "status=pending", "status=dead&limit=0", "status=dead&limit=501",
		"status=dead&cursor=" + url.QueryEscape(first), "status=dead&cursor=x/email:user:a", "status=dead&colour=blue", "status=dead&status=dead"} {
		if err := s.getError(t, "/api/v1/internal/routes?"+q); !isAPIError(err, http.StatusBadRequest, "invalid_request") {
			t.Errorf("%q: want 400 invalid_request, got %v", q, err)
		}
	}
}
