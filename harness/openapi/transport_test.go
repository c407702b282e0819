package openapi_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"galaxy/harness/openapi"
)

// The transport hands on an answer the document allows with its body
// intact, makes one it does not allow the request's error, and leaves a
// path the document does not declare alone.
func TestTransportChecksEachAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		switch r.URL.Path {
		case "/api/v1/internal/users/u-1":
			_, _ = io.WriteString(w, goodUser)
		case "/api/v1/internal/users/u-2":
			_, _ = io.WriteString(w, `{"user_id":"u-2"}`)
		default:
			_, _ = io.WriteString(w, `not the document's`)
		}
	}))
	t.Cleanup(srv.Close)
	hc := openapi.Client("userservice")
	get := func(path string) (string, error) {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	if body, err := get("/api/v1/internal/users/u-1"); err != nil || body != goodUser {
		t.Fatalf("a valid answer: %q, %v", body, err)
	}
	_, err := get("/api/v1/internal/users/u-2")
	if err == nil || !strings.Contains(err.Error(), "openapi: userservice: GET /api/v1/internal/users/u-2 → 200") {
		t.Fatalf("an invalid answer: %v", err)
	}
	if errors.Is(err, openapi.ErrNoRoute) {
		t.Fatalf("a declared route reported as undeclared: %v", err)
	}
	if body, err := get("/elsewhere"); err != nil || body != "not the document's" {
		t.Fatalf("an undeclared path: %q, %v", body, err)
	}
}
