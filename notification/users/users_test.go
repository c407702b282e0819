package users_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"galaxy/notification/users"
	"galaxy/platform/streams"
)

// The real User Service is exercised by notification/integration; this fake
// only checks the client's own logic: batching, decoding, error handling.
func TestResolveBatchesAndDecodes(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			UserIDs []string `json:"user_ids"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.UserIDs) > users.MaxBatch {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		var out []map[string]any
		var missing []string
		for _, id := range req.UserIDs {
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "u"))
			if n%3 == 0 {
				missing = append(missing, id)
				continue
			}
			u := map[string]any{"user_id": id, "email": id + "@example.com", "display_name": "U" + id, "locale": "en", "extra": true}
			if n%3 == 1 {
				u["email_notifications"] = n%2 == 0
			}
			out = append(out, u)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"users": out, "missing": missing})
	}))
	defer srv.Close()
	ids := make([]string, 1200)
	for i := range ids {
		ids[i] = "u" + strconv.Itoa(i)
	}
	got, err := users.New(srv.URL, time.Second).Resolve(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("want 3 calls of at most %d IDs, got %d", users.MaxBatch, calls.Load())
	}
	if len(got) != 800 {
		t.Fatalf("want 800 users found, got %d", len(got))
	}
	if _, ok := got["u3"]; ok {
		t.Fatal("a missing user must be absent")
	}
	if got["u4"].OptedOut() != false || got["u7"].OptedOut() != true || got["u5"].OptedOut() != false {
		t.Fatalf("opt-out: u4 %v u7 %v u5 %v", got["u4"].OptedOut(), got["u7"].OptedOut(), got["u5"].OptedOut())
	}
	if got["u5"].Email != "u5@example.com" || got["u5"].DisplayName != "Uu5" {
		t.Fatalf("decoded user: %+v", got["u5"])
	}
}

func TestResolveFailsOnUnavailableOrSlowService(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
	}))
	defer down.Close()
	if _, err := users.New(down.URL, time.Second).Resolve(t.Context(), []string{"a"}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want a 503 error, got %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	start := time.Now()
	if _, err := users.New(slow.URL, 100*time.Millisecond).Resolve(t.Context(), []string{"a"}); err == nil {
		t.Fatal("want a timeout error")
	}
	if time.Since(start) > time.Second {
		t.Fatalf("the timeout was not applied: %s", time.Since(start))
	}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	defer garbage.Close()
	if _, err := users.New(garbage.URL, time.Second).Resolve(t.Context(), []string{"a"}); err == nil {
		t.Fatal("want a decode error")
	}
}

func TestResolveSendsTheBearerToken(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(map[string]any{"users": []any{}, "missing": []string{"u1"}})
	}))
	defer srv.Close()
	if _, err := users.New(srv.URL, time.Second).WithToken("s3cret").Resolve(t.Context(), []string{"u1"}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "Bearer s3cret" {
		t.Fatalf("Authorization: %q", got.Load())
	}
	if _, err := users.New(srv.URL, time.Second).Resolve(t.Context(), []string{"u1"}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "" {
		t.Fatalf("no token configured, but sent %q", got.Load())
	}
}

// A failure that says the User Service cannot serve now is marked
// unavailable (the caller waits it out); one that says it refused the call,
// or answered something unreadable, is not.
func TestResolveMarksUnavailabilityApartFromRefusals(t *testing.T) {
	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"code":"x"}}`, code)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	t.Cleanup(garbage.Close)

	for _, c := range []struct {
		name, url   string
		unavailable bool
	}{
		{"503", status(http.StatusServiceUnavailable), true},
		{"500", status(http.StatusInternalServerError), true},
		{"502", status(http.StatusBadGateway), true},
		{"429", status(http.StatusTooManyRequests), true},
		{"timeout", slow.URL, true},
		{"connection refused", closedURL, true},
		{"400", status(http.StatusBadRequest), false},
		{"401", status(http.StatusUnauthorized), false},
		{"404", status(http.StatusNotFound), false},
		{"garbage", garbage.URL, false},
	} {
		_, err := users.New(c.url, 100*time.Millisecond).Resolve(t.Context(), []string{"a"})
		if err == nil {
			t.Errorf("%s: want an error", c.name)
			continue
		}
		if got := streams.IsUnavailable(err); got != c.unavailable {
			t.Errorf("%s: unavailable = %v, want %v (%v)", c.name, got, c.unavailable, err)
		}
	}
}
