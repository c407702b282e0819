package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// inFlight reads GET /api/v1/internal/notifications/in-flight.
func (s *service) inFlight(t *testing.T) harness.NotificationInFlight {
	t.Helper()
	var f harness.NotificationInFlight
	if err := harness.GetJSON(t.Context(), s.api.BaseURL+harness.NotificationInFlightPath, &f); err != nil {
		t.Fatalf("in-flight: %v", err)
	}
	if f.InFlight != f.PendingRoutes || f.PendingRoutes != f.AwaitingFirstAttempt+f.AwaitingRetry {
		t.Fatalf("in-flight counts do not add up: %+v", f)
	}
	return f
}

// TestInFlightCountsWaitingRoutes: while the mail stream cannot be written
// the routes of a notification wait for a retry, are counted in flight, and
// harness.Settled names them; once they are handed off the counts are zero
// and Settled returns.
func TestInFlightCountsWaitingRoutes(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "ops-a@example.com,ops-b@example.com",
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":                     "100",
	})
	if f := s.inFlight(t); f != (harness.NotificationInFlight{}) {
		t.Fatalf("fresh service: %+v", f)
	}
	// XADD to a key holding a string fails (WRONGTYPE): every hand-off fails.
	if err := rdb.Set(t.Context(), s.mailStream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	id := s.publish(t, adminIntent("runtime.image_pull_failed", "game-inflight"))
	var last harness.NotificationInFlight
	eventually(t, 15*time.Second, func() (bool, string) {
		last = s.inFlight(t)
		return last.PendingNotifications == 1 && last.AwaitingRetry == 2, fmt.Sprintf("%+v", last)
	}, s.proc)
	// /metrics says the same, and how long the notification has waited.
	scraped, err := harness.ScrapeMetrics(t.Context(), s.api.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := scraped.Value(`notification_waiting_routes{wait="retry"}`); got != 2 {
		t.Fatalf(`notification_waiting_routes{wait="retry"} = %v while both routes retry, want 2`, got)
	}
	if got := scraped.Value("notification_oldest_waiting_age_seconds"); got <= 0 {
		t.Fatalf("notification_oldest_waiting_age_seconds = %v while routes wait, want above 0", got)
	}

	// The mail stream is left out: no Mail reads it here, and it is not a
	// stream right now.
	p := &harness.Pipeline{Redis: rdb, Streams: harness.PipelineStreams{Intents: s.intentsStream}, NotificationURL: s.api.BaseURL}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = p.Settled(ctx)
	var se *harness.SettledError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settled while routes wait = %v, want a *SettledError for the deadline", err)
	}
	if !strings.Contains(err.Error(), "notification: 2 routes of 1 notifications waiting") {
		t.Fatalf("the error does not name the waiting routes: %v", err)
	}
	t.Logf("Settled: %v", err)

	if err := rdb.Del(t.Context(), s.mailStream).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.Settled(ctx); err != nil {
		t.Fatalf("Settled once the mail stream is writable: %v", err)
	}
	if f := s.inFlight(t); f != (harness.NotificationInFlight{}) {
		t.Fatalf("in flight after Settled: %+v", f)
	}
	if scraped, err = harness.ScrapeMetrics(t.Context(), s.api.BaseURL); err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{`notification_waiting_routes{wait="retry"}`, `notification_waiting_routes{wait="first_attempt"}`, "notification_oldest_waiting_age_seconds"} {
		if got := scraped.Value(series); got != 0 {
			t.Fatalf("%s = %v after Settled, want 0", series, got)
		}
	}
	if n, ok := s.notification(t, id); !ok || n.Status != "routed" {
		t.Fatalf("notification after Settled: %+v", n)
	}
	if got := len(s.mailCommands(t)); got != 2 {
		t.Fatalf("%d mail commands, want 2", got)
	}
}

// TestInFlightRefusesQueryParameters, as the list does: a parameter the
// endpoint does not know is a mistake worth reporting.
func TestInFlightRefusesQueryParameters(t *testing.T) {
	s := startNotification(t, nil)
	err := s.getError(t, harness.NotificationInFlightPath+"?status=pending")
	if !isAPIError(err, http.StatusBadRequest, "invalid_request") {
		t.Fatalf("in-flight?status=pending: %v", err)
	}
}

// TestDeadRoutesAreCounted: routes whose every hand-off failed are dead,
// no longer waiting, and notification_dead_routes counts them.
func TestDeadRoutesAreCounted(t *testing.T) {
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "ops-a@example.com,ops-b@example.com",
		"NOTIFICATION_ROUTE_MAX_ATTEMPTS":                     "2",
	})
	if err := rdb.Set(t.Context(), s.mailStream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	id := s.publish(t, adminIntent("runtime.image_pull_failed", "game-dead-routes"))
	eventually(t, 20*time.Second, func() (bool, string) {
		n, ok := s.notification(t, id)
		return ok && n.Status == "dead", fmt.Sprintf("%+v", n)
	}, s.proc)
	scraped, err := harness.ScrapeMetrics(t.Context(), s.api.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"notification_dead_routes":                          2,
		`notification_waiting_routes{wait="retry"}`:         0,
		`notification_waiting_routes{wait="first_attempt"}`: 0,
		"notification_backlog_read_errors_total":            0,
	}
	for series, v := range want {
		if got, ok := scraped[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
}
