package openapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"galaxy/harness/openapi"
)

const jsonCT = "application/json"

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

const goodUser = `{"user_id":"u-1","email":"ada@example.com","display_name":"Ada","locale":"en-GB",` +
	`"email_notifications":true,"created_at_ms":1764676800000,"updated_at_ms":1764676800000}`

func TestDocumentsLoadAsOpenAPI31(t *testing.T) {
	apis, err := openapi.APIs()
	if err != nil {
		t.Fatal(err)
	}
	if len(apis) != 4 {
		t.Fatalf("loaded %d documents, want 4", len(apis))
	}
	for name, api := range apis {
		if api.Doc.OpenAPI != "3.1.0" {
			t.Errorf("%s: openapi %q, want 3.1.0", name, api.Doc.OpenAPI)
		}
		if api.Doc.Components.SecuritySchemes["bearerAuth"] == nil {
			t.Errorf("%s: no bearerAuth security scheme", name)
		}
	}
}

// TestProbesAreTheSame holds the four documents' shared parts equal: the
// probes are served by platform/httpapi for every service, and
// ValidateByPath relies on it.
func TestProbesAreTheSame(t *testing.T) {
	apis, err := openapi.APIs()
	if err != nil {
		t.Fatal(err)
	}
	shared := func(api *openapi.API) map[string]string {
		parts := map[string]any{
			"security":                   api.Doc.Security,
			"securitySchemes.bearerAuth": api.Doc.Components.SecuritySchemes["bearerAuth"],
		}
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			parts["paths."+p] = api.Doc.Paths.Value(p)
		}
		for _, s := range []string{"Error", "Health", "Ready", "NotReady", "Count", "UnixMillis"} {
			parts["schemas."+s] = api.Doc.Components.Schemas[s]
		}
		for _, r := range []string{"BadRequest", "Unauthorized", "NotFound", "Conflict", "Unavailable"} {
			parts["responses."+r] = api.Doc.Components.Responses[r]
		}
		out := map[string]string{}
		for k, v := range parts {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: %s: %v", api.Service, k, err)
			}
			out[k] = string(b)
		}
		return out
	}
	want := shared(apis["userservice"])
	for _, name := range []string{"mail", "notification", "rtmanager"} {
		got := shared(apis[name])
		for k, w := range want {
			if w == "null" {
				t.Errorf("userservice: %s missing", k)
			}
			if got[k] != w {
				t.Errorf("%s: %s differs from userservice's:\n got %s\nwant %s", name, k, got[k], w)
			}
		}
	}
}

func TestValidateAcceptsAnswersTheCodeGives(t *testing.T) {
	cases := []struct {
		name, service, method, path string
		status                      int
		header                      http.Header
		body                        string
	}{
		{"user", "userservice", "GET", "/api/v1/internal/users/u-1", 200, header("Content-Type", jsonCT), goodUser},
		{"deleted", "userservice", "DELETE", "/api/v1/internal/users/u-1", 204, header(), ""},
		{"error", "userservice", "GET", "/api/v1/internal/users/u-1", 404, header("Content-Type", jsonCT), `{"error":{"code":"not_found","message":"user \"u-1\" not found"}}`},
		{"unauthorized", "mail", "GET", "/api/v1/internal/deliveries", 401, header("Content-Type", jsonCT, "WWW-Authenticate", "Bearer"), `{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}`},
		{"method not allowed", "rtmanager", "DELETE", "/api/v1/internal/runtimes/g-1", 405, header("Content-Type", jsonCT, "Allow", "GET, HEAD"), `{"error":{"code":"method_not_allowed","message":"DELETE is not allowed"}}`},
		{"in-flight", "notification", "GET", "/api/v1/internal/notifications/in-flight", 200, header("Content-Type", jsonCT), `{"pending_notifications":0,"pending_routes":0,"awaiting_first_attempt":0,"awaiting_retry":0,"in_flight":0}`},
		{"runtimes", "rtmanager", "GET", "/api/v1/internal/runtimes?state=running,failed", 200, header("Content-Type", jsonCT), `{"items":[],"next_cursor":""}`},
		{"not ready", "rtmanager", "GET", "/readyz", 503, header("Content-Type", jsonCT), `{"status":"unavailable","checks":[{"check":"docker","error":"down"}]}`},
		{"metrics", "mail", "GET", "/metrics", 200, header("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"), "# HELP up\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://127.0.0.1:8080"+c.path, nil)
			if err := openapi.Validate(c.service, req, c.status, c.header, []byte(c.body)); err != nil {
				t.Fatal(err)
			}
			if err := openapi.ValidateByPath(req, c.status, c.header, []byte(c.body)); err != nil {
				t.Fatalf("by path: %v", err)
			}
		})
	}
}

func TestValidateRejectsAnswersTheDocumentsDoNotAllow(t *testing.T) {
	withUser := func(edit func(map[string]any)) string {
		var u map[string]any
		if err := json.Unmarshal([]byte(goodUser), &u); err != nil {
			t.Fatal(err)
		}
		edit(u)
		b, _ := json.Marshal(u)
		return string(b)
	}
	cases := []struct {
		name, service, method, path string
		status                      int
		header                      http.Header
		body                        string
		want                        []string // substrings of the error, in order
	}{
		{"missing required field", "userservice", "GET", "/api/v1/internal/users/u-1", 200, header("Content-Type", jsonCT),
			withUser(func(u map[string]any) { delete(u, "locale") }),
			[]string{"openapi: userservice: GET /api/v1/internal/users/u-1 → 200: ", "User", `"locale"`}},
		{"wrong type", "userservice", "GET", "/api/v1/internal/users/u-1", 200, header("Content-Type", jsonCT),
			withUser(func(u map[string]any) { u["email_notifications"] = "yes" }),
			[]string{"userservice: GET /api/v1/internal/users/u-1 → 200", "/email_notifications", "boolean"}},
		{"field not in the document", "userservice", "GET", "/api/v1/internal/users/u-1", 200, header("Content-Type", jsonCT),
			withUser(func(u map[string]any) { u["nickname"] = "A" }),
			[]string{"→ 200", `"nickname"`}},
		{"null where not nullable", "rtmanager", "GET", "/api/v1/internal/runtimes/g-1", 200, header("Content-Type", jsonCT),
			`{"game_id":"g-1","state":"running","image_ref":"i","container_id":null,"last_error_code":"","last_error_message":"","updated_at_ms":1}`,
			[]string{"rtmanager: GET /api/v1/internal/runtimes/g-1 → 200", "/container_id"}},
		{"value outside the enum", "rtmanager", "GET", "/api/v1/internal/runtimes/g-1", 200, header("Content-Type", jsonCT),
			`{"game_id":"g-1","state":"sleeping","image_ref":"i","container_id":"","last_error_code":"","last_error_message":"","updated_at_ms":1}`,
			[]string{"/state"}},
		{"undeclared status", "userservice", "GET", "/api/v1/internal/users/u-1", 409, header("Content-Type", jsonCT),
			`{"error":{"code":"conflict","message":"x"}}`,
			[]string{"userservice: GET /api/v1/internal/users/u-1 → 409: ", "status is not supported"}},
		{"error not in the contract's shape", "notification", "GET", "/api/v1/internal/notifications/1-0", 404, header("Content-Type", jsonCT),
			`{"code":"not_found","message":"x"}`,
			[]string{"notification: GET /api/v1/internal/notifications/1-0 → 404", "Error"}},
		{"wrong content type", "mail", "GET", "/api/v1/internal/deliveries/in-flight", 200, header("Content-Type", "text/plain"),
			`{"queued":0,"sending":0,"retrying":0,"in_flight":0}`,
			[]string{"mail: GET /api/v1/internal/deliveries/in-flight → 200", "text/plain"}},
		{"required header missing", "mail", "POST", "/api/v1/internal/deliveries", 200, header("Content-Type", jsonCT),
			`{}`,
			[]string{"mail: POST /api/v1/internal/deliveries → 200", "Idempotency-Replayed"}},
		{"401 without WWW-Authenticate", "notification", "GET", "/api/v1/internal/notifications", 401, header("Content-Type", jsonCT),
			`{"error":{"code":"unauthorized","message":"x"}}`,
			[]string{"→ 401", "WWW-Authenticate"}},
		{"a body where none is declared", "userservice", "DELETE", "/api/v1/internal/users/u-1", 204, header("Content-Type", jsonCT),
			`{"deleted":true}`,
			[]string{"→ 204", "declares no body"}},
		{"405 not in the error shape", "mail", "PUT", "/api/v1/internal/deliveries", 405, header("Content-Type", jsonCT, "Allow", "GET, POST"),
			`{"error":"no"}`,
			[]string{"mail: PUT /api/v1/internal/deliveries → 405", "Error"}},
		{"another status for an undeclared method", "mail", "PUT", "/api/v1/internal/deliveries", 200, header("Content-Type", jsonCT), `{}`,
			[]string{"→ 200", "no operation for this method"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://127.0.0.1:8080"+c.path, nil)
			err := openapi.Validate(c.service, req, c.status, c.header, []byte(c.body))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			rest := err.Error()
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", err, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestValidateNamesUnknownRoutesAndServices(t *testing.T) {
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/internal/games", nil)
	err := openapi.Validate("rtmanager", req, 404, header("Content-Type", jsonCT), []byte(`{"error":{"code":"not_found","message":"x"}}`))
	if !errors.Is(err, openapi.ErrNoRoute) || !strings.Contains(err.Error(), "rtmanager: GET /api/v1/internal/games → 404") {
		t.Fatalf("err = %v, want ErrNoRoute naming the request", err)
	}
	if err := openapi.ValidateByPath(req, 404, nil, nil); !errors.Is(err, openapi.ErrNoRoute) {
		t.Fatalf("by path: err = %v, want ErrNoRoute", err)
	}
	// A path of another service's document is not this one's.
	req = httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/internal/deliveries", nil)
	if err := openapi.Validate("userservice", req, 200, header("Content-Type", jsonCT), []byte(`{}`)); !errors.Is(err, openapi.ErrNoRoute) {
		t.Fatalf("err = %v, want ErrNoRoute", err)
	}
	if err := openapi.Validate("lobby", req, 200, nil, nil); err == nil || !strings.Contains(err.Error(), `unknown service "lobby"`) {
		t.Fatalf("err = %v, want unknown service", err)
	}
}

// TestValidateIsSafeForConcurrentUse: the acceptance suite's clients call
// Validate from many goroutines (run with -race).
func TestValidateIsSafeForConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/internal/users/u-1", nil)
			errs <- openapi.Validate("userservice", req, 200, header("Content-Type", jsonCT), []byte(goodUser))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkValidate measures one check of a user answer, the cost the
// acceptance suite's clients add to each request.
func BenchmarkValidate(b *testing.B) {
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/internal/users/u-1", nil)
	h := header("Content-Type", jsonCT)
	for b.Loop() {
		if err := openapi.Validate("userservice", req, 200, h, []byte(goodUser)); err != nil {
			b.Fatal(err)
		}
	}
}

// A valid answer is remembered, but only as it was: the same answer with
// another body or without a header the document requires is checked again,
// and fails.
func TestRememberedAnswersAreCheckedAgainWhenAnythingDiffers(t *testing.T) {
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/internal/users/u-2", nil)
	for range 2 {
		if err := openapi.Validate("userservice", req, 200, header("Content-Type", jsonCT), []byte(goodUser)); err != nil {
			t.Fatal(err)
		}
	}
	if err := openapi.Validate("userservice", req, 200, header("Content-Type", jsonCT), []byte(`{"user_id":"u-2"}`)); err == nil {
		t.Error("a user without its fields passed after a valid answer of the same route")
	}
	unauthorized := []byte(`{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}`)
	with := header("Content-Type", jsonCT)
	with.Set("WWW-Authenticate", "Bearer")
	if err := openapi.Validate("userservice", req, 401, with, unauthorized); err != nil {
		t.Fatal(err)
	}
	if err := openapi.Validate("userservice", req, 401, header("Content-Type", jsonCT), unauthorized); err == nil {
		t.Error("a 401 without WWW-Authenticate passed after the same 401 with it")
	}
}
