package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/platform/httpapi"
)

func start(t *testing.T, token string, setup func(*httpapi.Server)) string {
	t.Helper()
	srv := httpapi.New("127.0.0.1:0", slog.New(slog.DiscardHandler), token, prometheus.NewRegistry())
	setup(srv)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return "http://" + srv.Addr()
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReadinessReportsEachFailingCheck(t *testing.T) {
	healthy := true
	base := start(t, "", func(s *httpapi.Server) {
		s.AddCheck("redis", func(context.Context) error { return nil })
		s.AddCheck("postgres", func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("connection refused")
		})
	})
	if code, body := get(t, base+"/readyz", ""); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("ready: %d %s", code, body)
	}
	healthy = false
	code, body := get(t, base+"/readyz", "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("want 503, got %d", code)
	}
	var got struct {
		Checks []struct{ Check, Error string }
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Checks) != 1 || got.Checks[0].Check != "postgres" {
		t.Fatalf("want one postgres failure, got %s (%v)", body, err)
	}
	if code, _ := get(t, base+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, body := get(t, base+"/metrics", ""); code != 200 || !strings.Contains(body, "http_requests_total") {
		t.Fatalf("metrics: %d", code)
	}
}

func TestTokenProtectsAPIButNotProbes(t *testing.T) {
	base := start(t, "s3cret", func(s *httpapi.Server) {
		s.Handle("GET /api/v1/internal/thing", func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteJSON(w, 200, map[string]string{"ok": "yes"})
		})
	})
	if code, body := get(t, base+"/api/v1/internal/thing", ""); code != 401 || !strings.Contains(body, `"unauthorized"`) {
		t.Fatalf("without token: %d %s", code, body)
	}
	if code, _ := get(t, base+"/api/v1/internal/thing", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := get(t, base+"/api/v1/internal/thing", "s3cret"); code != 200 {
		t.Fatalf("with token: %d", code)
	}
	if code, _ := get(t, base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz must stay open: %d", code)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	base := start(t, "", func(s *httpapi.Server) {
		s.Handle("GET /api/v1/internal/thing", func(w http.ResponseWriter, _ *http.Request) {})
	})
	if code, body := get(t, base+"/api/v1/internal/other", ""); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
	resp, err := http.Post(base+"/api/v1/internal/thing", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || !strings.Contains(string(body), `"method_not_allowed"`) || resp.Header.Get("Allow") == "" {
		t.Fatalf("wrong method: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	cases := map[string]string{
		`{"name":"a","extra":1}`: "unknown field",
		`{"name":"a"} {}`:        "trailing",
		`{"name":"a"} }`:         "trailing",
		`null`:                   "want a JSON object",
		``:                       "empty",
		`{"name":`:               "malformed",
		`{"name":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`: "exceeds",
	}
	for in, want := range cases {
		req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(in))
		var b body
		err := httpapi.DecodeJSON(req, &b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: want error containing %q, got %v", in, want, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"a"}`))
	var b body
	if err := httpapi.DecodeJSON(req, &b); err != nil || b.Name != "a" {
		t.Fatalf("valid body: %v %+v", err, b)
	}
}

// FuzzDecodeJSON feeds arbitrary bodies to the shared request decoder: it
// must never panic, and whatever it accepts must be exactly one JSON object
// with only the known fields, nothing before or after it.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"name":"a","ids":["x"]}`, `{"name":"a"} }`, `{} ]`, `{"name":"a"} {}`, ` {"ids":null} `, `[]`, `"s"`, `{"Name":"\u00e9"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		type body struct {
			Name string   `json:"name"`
			IDs  []string `json:"ids"`
		}
		req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(in))
		var b body
		if err := httpapi.DecodeJSON(req, &b); err != nil {
			return
		}
		var fields map[string]json.RawMessage
		if !json.Valid(in) || json.Unmarshal(in, &fields) != nil || fields == nil {
			t.Fatalf("accepted %q, which is not one JSON object", in)
		}
		for k := range fields {
			if !strings.EqualFold(k, "name") && !strings.EqualFold(k, "ids") {
				t.Fatalf("accepted unknown field %q in %q", k, in)
			}
		}
	})
}

// Requests are counted and timed by route pattern, method and numeric
// status code — the labels an alert on error rates or latency selects by.
func TestRequestsAreCountedAndTimedByRouteMethodAndCode(t *testing.T) {
	base := start(t, "s3cret", func(s *httpapi.Server) {
		s.Handle("GET /api/v1/internal/things/{id}", func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteJSON(w, 200, map[string]string{"ok": "yes"})
		})
	})
	get(t, base+"/api/v1/internal/things/1", "s3cret")
	get(t, base+"/api/v1/internal/things/2", "s3cret")
	get(t, base+"/api/v1/internal/things/3", "")
	get(t, base+"/nowhere", "")
	_, body := get(t, base+"/metrics", "")
	for _, want := range []string{
		`http_requests_total{code="200",method="get",route="/api/v1/internal/things/{id}"} 2`,
		`http_requests_total{code="401",method="get",route="/api/v1/internal/things/{id}"} 1`,
		`http_requests_total{code="404",method="get",route="unmatched"} 1`,
		`http_request_duration_seconds_count{code="200",method="get",route="/api/v1/internal/things/{id}"} 2`,
		`http_request_duration_seconds_bucket{code="401",method="get",route="/api/v1/internal/things/{id}",le="+Inf"} 1`,
		`# TYPE http_request_duration_seconds histogram`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
