package routing_test

import (
	"strings"
	"testing"
	"time"

	"galaxy/notification/intent"
	"galaxy/notification/routing"
)

func TestLoadAdminRecipients(t *testing.T) {
	admins, err := routing.LoadAdminRecipients([]string{
		"PATH=/bin",
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED=rtm-admin@example.com",
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_START_CONFIG_INVALID= a@example.com , b@example.com,A@example.com",
		"NOTIFICATION_ADMIN_EMAILS_EMPTY_ONE=",
		"NOTIFICATION_ADMIN_LOCALE=en",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := admins.For("runtime.image_pull_failed"); strings.Join(got, ",") != "rtm-admin@example.com" {
		t.Fatalf("image pull list: %v", got)
	}
	if got := admins.For("runtime.start_config_invalid"); strings.Join(got, ",") != "a@example.com,b@example.com" {
		t.Fatalf("config invalid list (trimmed, deduplicated): %v", got)
	}
	if got := admins.For("empty.one"); got != nil {
		t.Fatalf("an empty value is no list, got %v", got)
	}
	if got := admins.For("runtime.container_start_failed"); got != nil {
		t.Fatalf("unconfigured type: %v", got)
	}
}

func TestLoadAdminRecipientsNamesTheBadVariable(t *testing.T) {
	for _, value := range []string{"not-an-address", "a@example.com,,b@example.com", "Ops <ops@example.com>", "a@example.com;b@example.com"} {
		_, err := routing.LoadAdminRecipients([]string{"NOTIFICATION_ADMIN_EMAILS_RUNTIME_X=" + value})
		if err == nil || !strings.HasPrefix(err.Error(), "NOTIFICATION_ADMIN_EMAILS_RUNTIME_X: ") {
			t.Errorf("%q: want an error naming the variable, got %v", value, err)
		}
	}
	if _, err := routing.LoadAdminRecipients([]string{"NOTIFICATION_ADMIN_EMAILS_=a@example.com"}); err == nil {
		t.Error("a variable without a type must be refused")
	}
}

func TestPlan(t *testing.T) {
	admins := routing.AdminRecipients{"RUNTIME_IMAGE_PULL_FAILED": {"a@example.com", "b@example.com"}}
	routes, skip := routing.Plan("1-0", intent.Intent{NotificationType: "runtime.image_pull_failed", AudienceKind: intent.AudienceAdminEmail}, admins)
	if skip != "" || len(routes) != 2 {
		t.Fatalf("admin plan: %v %q", routes, skip)
	}
	if routes[0].ID != "email:email:a@example.com" || routes[0].IdempotencyKey != "notification:1-0/email:email:a@example.com" || routes[0].Address != "a@example.com" {
		t.Fatalf("admin route: %+v", routes[0])
	}
	_, skip = routing.Plan("1-0", intent.Intent{NotificationType: "runtime.other", AudienceKind: intent.AudienceAdminEmail}, admins)
	if skip != routing.ReasonNoAdminRecipients {
		t.Fatalf("no list: %q", skip)
	}
	routes, _ = routing.Plan("5-1", intent.Intent{NotificationType: "user.x", AudienceKind: intent.AudienceUser, UserIDs: []string{"u1", "u2"}}, admins)
	if len(routes) != 2 || routes[1].ID != "email:user:u2" || routes[1].UserID != "u2" || routes[1].IdempotencyKey != "notification:5-1/email:user:u2" {
		t.Fatalf("user routes: %+v", routes)
	}
}

func TestSummarize(t *testing.T) {
	r := func(status, reason string) routing.RouteState {
		return routing.RouteState{Status: status, Reason: reason}
	}
	cases := []struct {
		routes []routing.RouteState
		status string
		reason string
	}{
		{[]routing.RouteState{r("routed", ""), r("pending", "")}, routing.StatusPending, ""},
		{[]routing.RouteState{r("routed", ""), r("routed", "")}, routing.StatusRouted, ""},
		{[]routing.RouteState{r("routed", ""), r("skipped", "email_opted_out"), r("skipped", "user_not_found")}, routing.StatusPartiallyRouted,
			"some_routes_not_routed: email_opted_out=1, user_not_found=1"},
		{[]routing.RouteState{r("routed", ""), r("dead", "attempts_exhausted")}, routing.StatusPartiallyRouted, "some_routes_not_routed: attempts_exhausted=1"},
		{[]routing.RouteState{r("skipped", "user_not_found"), r("dead", "attempts_exhausted")}, routing.StatusDead, "routes_dead: attempts_exhausted=1, user_not_found=1"},
		{[]routing.RouteState{r("skipped", "user_not_found"), r("skipped", "user_not_found")}, routing.StatusSkipped, "user_not_found"},
		{[]routing.RouteState{r("skipped", "user_not_found"), r("skipped", "email_opted_out")}, routing.StatusSkipped, "all_routes_skipped: email_opted_out=1, user_not_found=1"},
	}
	for i, c := range cases {
		status, reason := routing.Summarize(c.routes)
		if status != c.status || reason != c.reason {
			t.Errorf("case %d: got %s %q, want %s %q", i, status, reason, c.status, c.reason)
		}
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	b := routing.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	prevMax := time.Duration(0)
	for attempt := 1; attempt <= 12; attempt++ {
		lo, hi := time.Hour, time.Duration(0)
		for range 200 {
			d := b.Delay(attempt)
			if d < b.Min || d > b.Max {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", attempt, d, b.Min, b.Max)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if hi < prevMax*8/10 {
			t.Fatalf("attempt %d: delays shrink (%s after %s)", attempt, hi, prevMax)
		}
		prevMax = hi
	}
	if d := (routing.Backoff{Min: time.Second, Max: time.Second}).Delay(5); d != time.Second {
		t.Fatalf("min == max must give exactly that delay, got %s", d)
	}
}
