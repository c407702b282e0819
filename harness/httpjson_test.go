package harness

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	goodUser = `{"user_id":"u-1","email":"ada@example.com","display_name":"Ada","locale":"en-GB",` +
		`"email_notifications":true,"created_at_ms":1764676800000,"updated_at_ms":1764676800000}`
	// badUser lacks locale, which the document requires.
	badUser = `{"user_id":"u-2","email":"bob@example.com","display_name":"Bob",` +
		`"email_notifications":true,"created_at_ms":1764676800000,"updated_at_ms":1764676800000}`
)

// userServer stands in for the User Service's answers: one user as the
// document allows it, one as it does not, and a path it does not declare.
func userServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/internal/users/u-1":
			_, _ = io.WriteString(w, goodUser)
		case "/api/v1/internal/users/u-2":
			_, _ = io.WriteString(w, badUser)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			_, _ = io.WriteString(w, `{"anything":"goes"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The typed clients get no answer the service's document does not allow.
func TestTypedClientsCheckEveryAnswer(t *testing.T) {
	srv := userServer(t)
	ctx := context.Background()
	users := NewUserClient(srv.URL, "")
	if u, err := users.Get(ctx, "u-1"); err != nil || u.Locale != "en-GB" {
		t.Fatalf("a valid answer: %+v, %v", u, err)
	}
	_, err := users.Get(ctx, "u-2")
	if err == nil || !strings.Contains(err.Error(), "openapi: userservice: GET /api/v1/internal/users/u-2 → 200") ||
		!strings.Contains(err.Error(), "locale") {
		t.Fatalf("an answer without locale: %v", err)
	}
	// The raw escape hatch is checked as well.
	if _, err := users.Do(ctx, http.MethodGet, "/api/v1/internal/users/u-2", nil); err == nil || !strings.Contains(err.Error(), "openapi") {
		t.Fatalf("Do of an answer without locale: %v", err)
	}
}

// Do checks an answer when it names the service, and then only on the
// document's paths.
func TestDoChecksTheAnswersOfANamedService(t *testing.T) {
	srv := userServer(t)
	ctx := context.Background()
	bad := Request{URL: srv.URL + "/api/v1/internal/users/u-2"}
	if resp, err := Do(ctx, bad); err != nil || resp.Status != http.StatusOK || string(resp.Body) != badUser {
		t.Fatalf("no service named: %d %q %v", resp.Status, resp.Body, err)
	}
	bad.Service = "userservice"
	if _, err := Do(ctx, bad); err == nil || !strings.Contains(err.Error(), "openapi: userservice") {
		t.Fatalf("userservice named: %v", err)
	}
	if _, err := Do(ctx, Request{URL: srv.URL + "/elsewhere", Service: "userservice"}); err != nil {
		t.Fatalf("a path the document does not declare: %v", err)
	}
	var u User
	if _, err := DoJSON(ctx, Request{URL: srv.URL + "/api/v1/internal/users/u-1", Service: "userservice"}, &u); err != nil || u.UserID != "u-1" {
		t.Fatalf("DoJSON of a valid answer: %+v %v", u, err)
	}
}

func TestDoBoundsTheRequest(t *testing.T) {
	srv := userServer(t)
	start := time.Now()
	_, err := Do(context.Background(), Request{URL: srv.URL + "/slow", Timeout: 100 * time.Millisecond})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("a slow answer: %v after %s", err, time.Since(start))
	}
	if StatusOf(err) != 0 {
		t.Fatalf("no answer, yet StatusOf = %d", StatusOf(err))
	}
}
