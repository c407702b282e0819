package integration_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

type listPage struct {
	Items      []notification `json:"items"`
	NextCursor string         `json:"next_cursor"`
}

func (s *service) list(t *testing.T, query url.Values) listPage {
	t.Helper()
	code, body := s.get(t, "/api/v1/internal/notifications?"+query.Encode())
	if code != http.StatusOK {
		t.Fatalf("list %v: %d %s", query, code, body)
	}
	var p listPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode list: %v\n%s", err, body)
	}
	return p
}

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
	q := url.Values{"limit": {"2"}}
	for page := 0; ; page++ {
		p := s.list(t, q)
		if len(p.Items) > 2 {
			t.Fatalf("page %d has %d items", page, len(p.Items))
		}
		for _, n := range p.Items {
			got = append(got, n.IntentID)
		}
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
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

	if p := s.list(t, url.Values{"status": {"routed"}}); len(p.Items) != 5 || len(p.Items[0].Routes) != 1 {
		t.Errorf("status filter: %d items", len(p.Items))
	}
	if p := s.list(t, url.Values{"type": {"runtime.container_start_failed"}}); len(p.Items) != 1 || p.Items[0].IntentID != skipped {
		t.Errorf("type filter: %+v", p.Items)
	}
	if p := s.list(t, url.Values{"type": {"runtime.image_pull_failed"}, "status": {"skipped"}}); len(p.Items) != 0 {
		t.Errorf("combined filter: %+v", p.Items)
	}
	if p := s.list(t, nil); len(p.Items) != len(all) || p.NextCursor != "" {
		t.Errorf("default page: %d items, cursor %q", len(p.Items), p.NextCursor)
	}

	for _, bad := range []string{
		"limit=0", "limit=501", "limit=x", "status=sent", "type=Bad", "cursor=abc", "cursor=1-2-3", "colour=blue", "limit=1&limit=2",
	} {
		code, body := s.get(t, "/api/v1/internal/notifications?"+bad)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"code":"invalid_request"`) {
			t.Errorf("%s: want 400 invalid_request, got %d %s", bad, code, body)
		}
	}
	if code, _ := s.get(t, "/api/v1/internal/notifications?limit=500"); code != http.StatusOK {
		t.Errorf("limit=500: %d", code)
	}
	if code, body := s.get(t, "/api/v1/internal/notifications/1-999"); code != http.StatusNotFound || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Errorf("unknown: %d %s", code, body)
	}
	if code, _ := s.get(t, "/api/v1/internal/notifications/not-an-id"); code != http.StatusBadRequest {
		t.Errorf("malformed id: %d", code)
	}
	code, body := s.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "user_service") {
		t.Errorf("readyz without a User Service: %d %s", code, body)
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
