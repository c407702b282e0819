package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// The list is newest first with cursor paging and filters; bad queries are
// 400 and unknown notifications 404, with the contract's error shape.
func TestNotificationAPI(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
	})
	var routed []string
	for i := range 5 {
		routed = append(routed, s.publish(t, adminIntent("runtime.image_pull_failed", "g"+string(rune('a'+i)))))
	}
	skipped := s.publish(t, adminIntent("runtime.container_start_failed", "g-skip"))
	rejected := s.publish(t, map[string]any{"notification_type": "bad"})
	s.waitStatus(t, rejected, 15*time.Second, "rejected")
	for _, id := range routed {
		s.waitStatus(t, id, 15*time.Second, "routed")
	}
	s.waitStatus(t, skipped, 15*time.Second, "skipped")

	all := append(append([]string{}, routed...), skipped, rejected)
	// Pages of two, newest first, until the cursor runs out.
	var got []string
	q := harness.NotificationQuery{Limit: 2}
	for page := 0; ; page++ {
		items, next := s.list(t, q)
		if len(items) > 2 {
			t.Fatalf("page %d has %d items", page, len(items))
		}
		for _, n := range items {
			got = append(got, n.IntentEntryID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != len(all) {
		t.Fatalf("paged through %v, want %d items", got, len(all))
	}
	for i := range all {
		if got[i] != all[len(all)-1-i] {
			t.Fatalf("order %v, want newest first of %v", got, all)
		}
	}

	if items, _ := s.list(t, harness.NotificationQuery{Status: "routed"}); len(items) != 5 || len(items[0].Routes) != 1 {
		t.Errorf("status filter: %d items", len(items))
	}
	if items, _ := s.list(t, harness.NotificationQuery{Type: "runtime.container_start_failed"}); len(items) != 1 || items[0].IntentEntryID != skipped {
		t.Errorf("type filter: %+v", items)
	}
	if items, _ := s.list(t, harness.NotificationQuery{Type: "runtime.image_pull_failed", Status: "skipped"}); len(items) != 0 {
		t.Errorf("combined filter: %+v", items)
	}
	if items, next := s.list(t, harness.NotificationQuery{}); len(items) != len(all) || next != "" {
		t.Errorf("default page: %d items, cursor %q", len(items), next)
	}

	for _, bad := range []string{
		"limit=0", "limit=501", "limit=x", "status=sent", "type=Bad", "cursor=abc", "cursor=1-2-3", "colour=blue", "limit=1&limit=2",
	} {
		// Raw: NotificationQuery cannot spell most of these.
		if err := s.getError(t, "/api/v1/internal/notifications?"+bad); !isAPIError(err, http.StatusBadRequest, "invalid_request") {
			t.Errorf("%s: want 400 invalid_request, got %v", bad, err)
		}
	}
	if _, _, err := s.api.Notifications(t.Context(), harness.NotificationQuery{Limit: 500}); err != nil {
		t.Errorf("limit=500: %v", err)
	}
	if _, err := s.api.Notification(t.Context(), "1-999"); !isAPIError(err, http.StatusNotFound, "not_found") {
		t.Errorf("unknown: %v", err)
	}
	if _, err := s.api.Notification(t.Context(), "not-an-id"); !isAPIError(err, http.StatusBadRequest, "") {
		t.Errorf("malformed id: %v", err)
	}
	r := s.get(t, "/readyz")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "user_service") {
		t.Errorf("readyz without a User Service: %d %s", r.Status, r.Body)
	}
}

// Bad configuration stops the process before it listens, with exit code 2
// and a message naming the variable.
func TestInvalidConfigurationExitsWithCode2(t *testing.T) {
	cases := map[string]map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": {"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "ops@example.com,not an address"},
		"NOTIFICATION_ROUTE_BACKOFF_MIN":                      {"NOTIFICATION_ROUTE_BACKOFF_MIN": "soon"},
		"NOTIFICATION_USER_SERVICE_TIMEOUT":                   {"NOTIFICATION_USER_SERVICE_TIMEOUT": "-1s"},
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":                     {"NOTIFICATION_ROUTE_MAX_ATTEMPTS": "0"},
		"NOTIFICATION_USER_SERVICE_BASE_URL":                  {"NOTIFICATION_USER_SERVICE_BASE_URL": "user-service:8081"},
		"NOTIFICATION_ADMIN_LOCALE":                           {"NOTIFICATION_ADMIN_LOCALE": "not a locale!"},
		"NOTIFICATION_INTERNAL_HTTP_ADDR":                     {"NOTIFICATION_INTERNAL_HTTP_ADDR": "localhost"},
	}
	for variable, env := range cases {
		t.Run(variable, func(t *testing.T) {
			p := harness.StartService(t.Context(), t, harness.ServiceSpec{
				Name: "notification", Infra: infra, DSN: "postgres://nowhere.invalid/db", Env: env, Wait: harness.WaitNone,
			}).Process
			code, err := p.Wait(10 * time.Second)
			if err != nil {
				t.Fatalf("did not exit: %v", err)
			}
			if code != 2 || !strings.Contains(p.Logs(), variable) {
				t.Fatalf("want exit 2 naming %s, got %d:\n%s", variable, code, p.Logs())
			}
		})
	}
}
