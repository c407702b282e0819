package harness

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// echoServer answers a few fixed paths with the error shapes the helper
// must tell apart, and every other path with 202 and a JSON account of the
// request it received.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/contract-error":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":{"code":"idempotency_conflict","message":"key used"}}`)
		case "/text-error":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "Error: no search query")
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("X-Seen", "yes")
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"method":          r.Method,
				"authorization":   r.Header.Get("Authorization"),
				"content_type":    r.Header.Get("Content-Type"),
				"idempotency_key": r.Header.Get("Idempotency-Key"),
				"body":            string(body),
			})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

type seen struct {
	Method         string `json:"method"`
	Authorization  string `json:"authorization"`
	ContentType    string `json:"content_type"`
	IdempotencyKey string `json:"idempotency_key"`
	Body           string `json:"body"`
}

func TestHTTPJSONSendsTokenBodyAndHeaders(t *testing.T) {
	srv := echoServer(t)
	var got seen
	resp, err := DoJSON(context.Background(), Request{
		Method: http.MethodPost,
		URL:    srv.URL + "/echo",
		Token:  "s3cret",
		Body:   map[string]any{"to": []string{"a@example.com"}},
		Header: http.Header{"Idempotency-Key": {"k1"}},
	}, &got, http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	want := seen{Method: "POST", Authorization: "Bearer s3cret", ContentType: "application/json",
		IdempotencyKey: "k1", Body: `{"to":["a@example.com"]}`}
	if got != want {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
	if resp.Header.Get("X-Seen") != "yes" {
		t.Errorf("answer headers not returned: %v", resp.Header)
	}

	// No token, no body: neither header is sent.
	got = seen{}
	if _, err := DoJSON(context.Background(), Request{URL: srv.URL + "/echo"}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got != (seen{Method: "GET"}) {
		t.Errorf("bare GET: server saw %+v", got)
	}
}

func TestHTTPJSONRawBodyIsSentAsIs(t *testing.T) {
	srv := echoServer(t)
	var got seen
	raw := []byte("{\"to\": [\x00 not json")
	if _, err := DoJSON(context.Background(), Request{Method: http.MethodPost, URL: srv.URL + "/echo", RawBody: raw}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got.Body != string(raw) {
		t.Errorf("server got body %q, want %q", got.Body, raw)
	}
	_, err := Do(context.Background(), Request{URL: srv.URL, Body: 1, RawBody: raw})
	if err == nil || !strings.Contains(err.Error(), "both Body and RawBody") {
		t.Errorf("Body and RawBody together: err = %v", err)
	}
}

func TestHTTPJSONUnexpectedStatusIsAPIError(t *testing.T) {
	srv := echoServer(t)
	ctx := context.Background()

	resp, err := DoJSON(ctx, Request{Method: http.MethodPost, URL: srv.URL + "/contract-error"}, nil, http.StatusAccepted)
	apiErr, ok := err.(*APIError)
	if !ok {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	if apiErr.Status != http.StatusConflict || apiErr.Code != "idempotency_conflict" || apiErr.Message != "key used" {
		t.Errorf("APIError = %+v", apiErr)
	}
	if resp.Status != http.StatusConflict || !strings.Contains(string(apiErr.Body), "idempotency_conflict") {
		t.Errorf("answer not kept: %d %q", resp.Status, apiErr.Body)
	}
	if want := "POST " + srv.URL + "/contract-error: 409 idempotency_conflict: key used"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if StatusOf(err) != http.StatusConflict || ErrorCodeOf(err) != "idempotency_conflict" {
		t.Errorf("StatusOf = %d, ErrorCodeOf = %q", StatusOf(err), ErrorCodeOf(err))
	}

	// A body that is not the contract's shape is still reported.
	err = GetJSON(ctx, srv.URL+"/text-error", &struct{}{})
	if StatusOf(err) != http.StatusBadRequest || ErrorCodeOf(err) != "" || !strings.Contains(err.Error(), "no search query") {
		t.Errorf("text error: %v", err)
	}

	// The default expectation is 200; 202 is not it.
	if err := GetJSON(ctx, srv.URL+"/echo", &seen{}); StatusOf(err) != http.StatusAccepted {
		t.Errorf("GetJSON of a 202: %v", err)
	}

	// An expected answer without a body leaves out alone.
	if _, err := DoJSON(ctx, Request{Method: http.MethodDelete, URL: srv.URL + "/no-content"}, &seen{}, http.StatusNoContent); err != nil {
		t.Errorf("204: %v", err)
	}

	// No answer at all is not an APIError.
	srv.Close()
	if err := GetJSON(ctx, srv.URL+"/echo", &seen{}); err == nil || StatusOf(err) != 0 {
		t.Errorf("closed server: %v", err)
	}
}

func TestAllPagesFollowsTheCursorAndStopsOnARepeat(t *testing.T) {
	pages := map[string]struct {
		items []int
		next  string
	}{"": {[]int{1, 2}, "b"}, "b": {[]int{3}, "c"}, "c": {[]int{4}, ""}}
	var asked []string
	got, err := allPages("numbers", "", func(cursor string) ([]int, string, error) {
		asked = append(asked, cursor)
		p := pages[cursor]
		return p.items, p.next, nil
	})
	if err != nil || !slices.Equal(got, []int{1, 2, 3, 4}) || !slices.Equal(asked, []string{"", "b", "c"}) {
		t.Fatalf("got %v, asked %q, err %v", got, asked, err)
	}
	_, err = allPages("numbers", "x", func(cursor string) ([]int, string, error) { return []int{1}, "x", nil })
	if err == nil || !strings.Contains(err.Error(), `numbers: next_cursor "x" repeats`) {
		t.Fatalf("a repeated cursor: err %v", err)
	}
}
