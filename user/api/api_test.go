package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/harness"
	"galaxy/platform/database"
	"galaxy/platform/httpapi"
	"galaxy/user/api"
	"galaxy/user/migrations"
	"galaxy/user/store"
)

// pkg holds what the package's tests share; see server.
var pkg = harness.NewPackageTB("user-api")

func TestMain(m *testing.M) {
	code := m.Run()
	pkg.Close()
	os.Exit(code)
}

// server returns the base URL of the User Service API in this process: the
// real httpapi server, handlers and store over a PostgreSQL database of its
// own, started on first use (fuzzing and pure tests need no container) and
// shared by every test of the package. Tests keep apart by using their own
// IDs and addresses.
var server = sync.OnceValue(func() string {
	ctx := context.Background()
	pg := harness.StartPostgres(ctx, pkg)
	dsn, err := pg.CreateDatabase(ctx, "userservice")
	if err != nil {
		pkg.Fatalf("%v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	pool, err := database.Open(ctx, "userservice", dsn, migrations.FS, logger)
	if err != nil {
		pkg.Fatalf("%v", err)
	}
	pkg.Cleanup(pool.Close)
	reg := prometheus.NewRegistry()
	srv := httpapi.New("127.0.0.1:0", logger, "", reg)
	srv.AddCheck("postgres", database.Check(pool))
	api.Register(srv, store.New(pool), logger, reg)
	if err := srv.Listen(); err != nil {
		pkg.Fatalf("%v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, 5*time.Second) }()
	pkg.Cleanup(func() { stop(); <-done })
	return "http://" + srv.Addr()
})

// call sends body (a string, or anything else as JSON; nil for none) and
// returns the status and the response body.
func call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	status, raw, err := send(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, raw
}

// send is call for goroutines other than the test's own, which must not
// call t.Fatal.
func send(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, server()+path, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, out, nil
}

// decodeStrict decodes a response whose shape the contract freezes.
func decodeStrict(t *testing.T, raw []byte, dst any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func wantError(t *testing.T, status int, raw []byte, wantStatus int, wantCode, wantMessage string) {
	t.Helper()
	var e httpapi.ErrorBody
	decodeStrict(t, raw, &e)
	if status != wantStatus || e.Error.Code != wantCode || !strings.Contains(e.Error.Message, wantMessage) {
		t.Fatalf("got %d %s, want %d %s with a message containing %q", status, raw, wantStatus, wantCode, wantMessage)
	}
}

func createUser(t *testing.T, body any) api.User {
	t.Helper()
	status, raw := call(t, "POST", "/api/v1/internal/users", body)
	if status != http.StatusCreated {
		t.Fatalf("create %v: %d %s", body, status, raw)
	}
	var u api.User
	decodeStrict(t, raw, &u)
	return u
}

func getUser(t *testing.T, id string) api.User {
	t.Helper()
	status, raw := call(t, "GET", "/api/v1/internal/users/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, status, raw)
	}
	var u api.User
	decodeStrict(t, raw, &u)
	return u
}

func exists(t *testing.T, id string) bool {
	t.Helper()
	status, raw := call(t, "GET", "/api/v1/internal/users/"+id+"/exists", nil)
	var got struct {
		Exists bool `json:"exists"`
	}
	decodeStrict(t, raw, &got)
	if status != http.StatusOK {
		t.Fatalf("exists %s: %d %s", id, status, raw)
	}
	return got.Exists
}

func TestCreateRejectsInvalidBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body, message string
	}{
		{"empty body", ``, "request body is empty"},
		{"not an object", `[]`, "malformed JSON body"},
		{"trailing data", `{"email":"a@example.com"}{}`, "trailing data"},
		{"unknown field", `{"email":"a@example.com","admin":true}`, `unknown field "admin"`},
		{"oversized", `{"email":"a@example.com","display_name":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, "exceeds"},
		{"email missing", `{"display_name":"Ann"}`, "email: required"},
		{"email null", `{"email":null}`, "email: must not be null"},
		{"email not a string", `{"email":42}`, "email: must be a string"},
		{"email no at", `{"email":"ann.example.com"}`, "email: "},
		{"email display name", `{"email":"Ann <ann@example.com>"}`, "email: \"Ann <ann@example.com>\" is not a bare address"},
		{"email angle brackets", `{"email":"<ann@example.com>"}`, "email: "},
		{"email comment", `{"email":"ann@example.com (Ann)"}`, "email: "},
		{"email leading space", `{"email":" ann@example.com"}`, "email: "},
		{"email two addresses", `{"email":"a@example.com, b@example.com"}`, "email: "},
		{"email header injection", `{"email":"ann@example.com\r\nBcc: eve@example.com"}`, "email: must not contain CR or LF"},
		{"email C1 control", `{"email":"\u0085ann@example.com"}`, "email: must not contain control characters"},
		{"email no-break space", `{"email":"ann\u00a0lee@example.com"}`, "email: must not contain spaces"},
		{"email local part too long", `{"email":"` + strings.Repeat("a", 65) + `@example.com"}`, "email: local part longer than 64"},
		{"email too long", `{"email":"a@` + strings.Repeat("b", 250) + `.com"}`, "email: longer than 254"},
		{"locale not a tag", `{"email":"a@example.com","locale":"english"}`, "locale: \"english\" is not a BCP 47"},
		{"locale undetermined", `{"email":"a@example.com","locale":"und"}`, "locale: \"und\" names no language"},
		{"locale empty", `{"email":"a@example.com","locale":""}`, "locale: "},
		{"locale null", `{"email":"a@example.com","locale":null}`, "locale: must not be null"},
		{"display name blank", `{"email":"a@example.com","display_name":"  "}`, "display_name: must not be blank"},
		{"display name control", `{"email":"a@example.com","display_name":"Ann\nBcc"}`, "display_name: must not contain control characters"},
		{"display name too long", `{"email":"a@example.com","display_name":"` + strings.Repeat("é", 201) + `"}`, "display_name: longer than 200"},
		{"user ID empty", `{"email":"a@example.com","user_id":""}`, "user_id: "},
		{"user ID leading dash", `{"email":"a@example.com","user_id":"-u"}`, "user_id: \"-u\" is not a valid user ID"},
		{"user ID space", `{"email":"a@example.com","user_id":"u 1"}`, "user_id: "},
		{"user ID too long", `{"email":"a@example.com","user_id":"` + strings.Repeat("u", 129) + `"}`, "user_id: "},
		{"user ID a number", `{"email":"a@example.com","user_id":7}`, "user_id: must be a string"},
		{"notifications a string", `{"email":"a@example.com","email_notifications":"yes"}`, "email_notifications: must be true or false"},
		{"notifications null", `{"email":"a@example.com","email_notifications":null}`, "email_notifications: must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := call(t, "POST", "/api/v1/internal/users", tc.body)
			wantError(t, status, raw, http.StatusBadRequest, "invalid_request", tc.message)
		})
	}
}

func TestPatchRejectsInvalidBodies(t *testing.T) {
	u := createUser(t, map[string]any{"email": "patch-invalid@example.com"})
	for _, tc := range []struct {
		name, body, message string
	}{
		{"no field", `{}`, "names no field to change"},
		{"null body", `null`, "want a JSON object"},
		{"user ID", `{"user_id":"other"}`, "user_id: cannot be changed"},
		{"timestamps", `{"created_at_ms":1}`, `unknown field "created_at_ms"`},
		{"email", `{"email":"Ann <ann@example.com>"}`, "email: "},
		{"email null", `{"email":null}`, "email: must not be null"},
		{"locale", `{"locale":"und"}`, "locale: "},
		{"display name", `{"display_name":""}`, "display_name: must not be blank"},
		{"notifications", `{"email_notifications":0}`, "email_notifications: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := call(t, "PATCH", "/api/v1/internal/users/"+u.UserID, tc.body)
			wantError(t, status, raw, http.StatusBadRequest, "invalid_request", tc.message)
		})
	}
	if got := getUser(t, u.UserID); got != u {
		t.Fatalf("rejected patches changed the user: %+v, was %+v", got, u)
	}
}

func TestUserRoundTrip(t *testing.T) {
	before := time.Now().UnixMilli()
	created := createUser(t, map[string]any{
		"user_id":             "round-trip.1",
		"email":               "Grace.Hopper@Example.org",
		"display_name":        "Grace Hopper",
		"locale":              "fr_ca",
		"email_notifications": false,
	})
	want := api.User{
		UserID: "round-trip.1", Email: "Grace.Hopper@Example.org", DisplayName: "Grace Hopper",
		Locale: "fr-CA", EmailNotifications: false,
		CreatedAtMS: created.CreatedAtMS, UpdatedAtMS: created.CreatedAtMS,
	}
	if created != want {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	if after := time.Now().UnixMilli(); created.CreatedAtMS < before-1000 || created.CreatedAtMS > after+1000 {
		t.Fatalf("created_at_ms %d is not about now (%d..%d)", created.CreatedAtMS, before, after)
	}
	if got := getUser(t, created.UserID); got != created {
		t.Fatalf("get %+v, want %+v", got, created)
	}
	if !exists(t, created.UserID) {
		t.Fatal("exists: false for a created user")
	}

	status, raw := call(t, "PATCH", "/api/v1/internal/users/"+created.UserID,
		`{"display_name":"Rear Admiral Hopper","email_notifications":true,"locale":"EN-gb"}`)
	if status != http.StatusOK {
		t.Fatalf("patch: %d %s", status, raw)
	}
	var patched api.User
	decodeStrict(t, raw, &patched)
	want = created
	want.DisplayName, want.EmailNotifications, want.Locale, want.UpdatedAtMS = "Rear Admiral Hopper", true, "en-GB", patched.UpdatedAtMS
	if patched != want || patched.UpdatedAtMS < created.UpdatedAtMS {
		t.Fatalf("patched %+v, want %+v", patched, want)
	}
	status, raw = call(t, "PATCH", "/api/v1/internal/users/"+created.UserID, `{"email":"grace@example.org"}`)
	if status != http.StatusOK {
		t.Fatalf("patch email: %d %s", status, raw)
	}
	if got := getUser(t, created.UserID); got.Email != "grace@example.org" || got.DisplayName != "Rear Admiral Hopper" {
		t.Fatalf("after e-mail patch: %+v", got)
	}

	if status, raw := call(t, "DELETE", "/api/v1/internal/users/"+created.UserID, nil); status != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("delete: %d %s", status, raw)
	}
	status, raw = call(t, "GET", "/api/v1/internal/users/"+created.UserID, nil)
	wantError(t, status, raw, http.StatusNotFound, "not_found", `user "round-trip.1" not found`)
	if exists(t, created.UserID) {
		t.Fatal("exists: true after delete")
	}
	status, raw = call(t, "DELETE", "/api/v1/internal/users/"+created.UserID, nil)
	wantError(t, status, raw, http.StatusNotFound, "not_found", "round-trip.1")
	status, raw = call(t, "PATCH", "/api/v1/internal/users/"+created.UserID, `{"locale":"en"}`)
	wantError(t, status, raw, http.StatusNotFound, "not_found", "round-trip.1")

	// The address is free again once its user is gone.
	createUser(t, map[string]any{"email": "GRACE@example.org"})
}

func TestCreateDefaults(t *testing.T) {
	u := createUser(t, map[string]any{"email": "Ada.Lovelace@Example.org"})
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`).MatchString(u.UserID) {
		t.Fatalf("generated user ID %q breaks the syntax", u.UserID)
	}
	if u.DisplayName != "Ada.Lovelace" || u.Locale != "en" || !u.EmailNotifications || u.Email != "Ada.Lovelace@Example.org" {
		t.Fatalf("defaults: %+v", u)
	}
	if other := createUser(t, map[string]any{"email": "ada2@example.org"}); other.UserID == u.UserID {
		t.Fatalf("two users got the ID %q", u.UserID)
	}
}

func TestUnknownAndImpossibleIDs(t *testing.T) {
	for _, id := range []string{"nobody-here", "-impossible", strings.Repeat("x", 129)} {
		if exists(t, id) {
			t.Errorf("exists %q: true", id)
		}
		status, raw := call(t, "GET", "/api/v1/internal/users/"+id, nil)
		wantError(t, status, raw, http.StatusNotFound, "not_found", id)
	}
}

func TestConflicts(t *testing.T) {
	a := createUser(t, map[string]any{"user_id": "conflict-a", "email": "Conflict.A@example.com"})
	b := createUser(t, map[string]any{"user_id": "conflict-b", "email": "conflict.b@example.com"})

	status, raw := call(t, "POST", "/api/v1/internal/users", map[string]any{"user_id": a.UserID, "email": "fresh@example.com"})
	wantError(t, status, raw, http.StatusConflict, "user_id_taken", "user_id")
	status, raw = call(t, "POST", "/api/v1/internal/users", map[string]any{"email": "CONFLICT.a@EXAMPLE.com"})
	wantError(t, status, raw, http.StatusConflict, "email_taken", "email")
	status, raw = call(t, "PATCH", "/api/v1/internal/users/"+b.UserID, map[string]any{"email": "conflict.A@example.COM"})
	wantError(t, status, raw, http.StatusConflict, "email_taken", "email")
	if got := getUser(t, b.UserID); got != b {
		t.Fatalf("a refused patch changed the user: %+v", got)
	}

	// A user may change the letter case of its own address.
	status, raw = call(t, "PATCH", "/api/v1/internal/users/"+a.UserID, map[string]any{"email": "conflict.a@example.com"})
	if status != http.StatusOK {
		t.Fatalf("re-casing one's own address: %d %s", status, raw)
	}
}

// TestConcurrentCreatesOfOneAddress races creates of one address written in
// different letter cases: the database, not a check-then-insert, decides.
func TestConcurrentCreatesOfOneAddress(t *testing.T) {
	const n = 20
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			email := mixCase("race.condition@example.com", i)
			var err error
			statuses[i], bodies[i], err = send("POST", "/api/v1/internal/users", map[string]any{"email": email})
			if err != nil {
				bodies[i] = []byte(err.Error())
			}
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		switch statuses[i] {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			wantError(t, statuses[i], bodies[i], http.StatusConflict, "email_taken", "email")
		default:
			t.Errorf("create %d: %d %s", i, statuses[i], bodies[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", created)
	}
}

// mixCase upper-cases the letters of s selected by the bits of i, so each
// i < 2^letters gives a different spelling.
func mixCase(s string, i int) string {
	b := []byte(s)
	bit := 0
	for j, c := range b {
		if c >= 'a' && c <= 'z' {
			if i>>bit&1 == 1 {
				b[j] = c - 'a' + 'A'
			}
			bit++
		}
	}
	return string(b)
}

type resolved struct {
	Users   []api.User `json:"users"`
	Missing []string   `json:"missing"`
}

func TestResolve(t *testing.T) {
	a := createUser(t, map[string]any{"user_id": "resolve-a", "email": "resolve.a@example.com"})
	b := createUser(t, map[string]any{"user_id": "resolve-b", "email": "resolve.b@example.com", "email_notifications": false})

	status, raw := call(t, "POST", "/api/v1/internal/users/resolve",
		map[string]any{"user_ids": []string{"resolve-b", "resolve-nobody", "resolve-a", "resolve-b", "bad id!", "resolve-nobody"}})
	if status != http.StatusOK {
		t.Fatalf("resolve: %d %s", status, raw)
	}
	var got resolved
	decodeStrict(t, raw, &got)
	if len(got.Users) != 2 || got.Users[0] != b || got.Users[1] != a {
		t.Fatalf("users: %+v, want [%+v %+v]", got.Users, b, a)
	}
	if strings.Join(got.Missing, ",") != "resolve-nobody,bad id!" {
		t.Fatalf("missing: %q", got.Missing)
	}

	// Nothing found is an answer too, with empty lists rather than nulls.
	status, raw = call(t, "POST", "/api/v1/internal/users/resolve", `{"user_ids":["resolve-none"]}`)
	if status != http.StatusOK || string(raw) != `{"users":[],"missing":["resolve-none"]}`+"\n" {
		t.Fatalf("resolve of an unknown ID: %d %s", status, raw)
	}

	ids := make([]string, api.MaxResolve)
	for i := range ids {
		ids[i] = "resolve-many-" + strconv.Itoa(i)
	}
	ids[api.MaxResolve-1] = a.UserID
	status, raw = call(t, "POST", "/api/v1/internal/users/resolve", map[string]any{"user_ids": ids})
	if status != http.StatusOK {
		t.Fatalf("resolve of %d IDs: %d %s", len(ids), status, raw)
	}
	decodeStrict(t, raw, &got)
	if len(got.Users) != 1 || len(got.Missing) != api.MaxResolve-1 {
		t.Fatalf("resolve of %d IDs: %d users, %d missing", len(ids), len(got.Users), len(got.Missing))
	}

	for _, tc := range []struct{ name, body, message string }{
		{"too many", fmt.Sprintf(`{"user_ids":%s}`, mustJSON(t, append(ids, "one-more"))), "user_ids: must hold 1 to 500 IDs, got 501"},
		{"empty", `{"user_ids":[]}`, "user_ids: must hold 1 to 500 IDs, got 0"},
		{"absent", `{}`, "user_ids: must hold 1 to 500 IDs"},
		{"not strings", `{"user_ids":[1]}`, "malformed JSON body"},
		{"unknown field", `{"user_ids":["a"],"limit":1}`, `unknown field "limit"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := call(t, "POST", "/api/v1/internal/users/resolve", tc.body)
			wantError(t, status, raw, http.StatusBadRequest, "invalid_request", tc.message)
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadinessAndMetrics(t *testing.T) {
	status, raw := call(t, "GET", "/readyz", nil)
	if status != http.StatusOK || !strings.Contains(string(raw), `"ready"`) {
		t.Fatalf("readyz: %d %s", status, raw)
	}
	before := createdCount(t)
	createUser(t, map[string]any{"email": "metrics@example.com"})
	call(t, "POST", "/api/v1/internal/users", map[string]any{"email": "METRICS@example.com"}) // 409, not counted
	if after := createdCount(t); after != before+1 {
		t.Fatalf("userservice_users_created_total went from %v to %v, want +1", before, after)
	}
}

func createdCount(t *testing.T) float64 {
	t.Helper()
	status, raw := call(t, "GET", "/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("metrics: %d", status)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "userservice_users_created_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no userservice_users_created_total in\n%s", raw)
	return 0
}
