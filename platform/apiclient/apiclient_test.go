package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"galaxy/platform/apiclient"
)

// echoServer answers a few fixed paths with the shapes the client must
// tell apart, and every other path with 202 and a JSON account of the
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
		case "/empty-error":
			w.WriteHeader(http.StatusBadGateway)
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/garbage":
			_, _ = io.WriteString(w, "<html>")
		case "/big":
			_, _ = io.WriteString(w, `"`+strings.Repeat("x", 100)+`"`)
		case "/cut":
			// Promise more than is sent: the client reads a body cut short.
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, `{"items":`)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			w.Header().Set("X-Seen", "yes")
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"method":          r.Method,
				"uri":             r.URL.RequestURI(),
				"authorization":   r.Header.Get("Authorization"),
				"content_type":    r.Header.Get("Content-Type"),
				"idempotency_key": r.Header.Get("Idempotency-Key"),
				"body":            string(body),
				"extra":           "the contract may add fields",
			})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

type seen struct {
	Method         string `json:"method"`
	URI            string `json:"uri"`
	Authorization  string `json:"authorization"`
	ContentType    string `json:"content_type"`
	IdempotencyKey string `json:"idempotency_key"`
	Body           string `json:"body"`
}

func TestSendsTokenBodyQueryAndHeaders(t *testing.T) {
	srv := echoServer(t)
	c := &apiclient.Client{BaseURL: srv.URL + "/", Token: "s3cret"}
	var got seen
	resp, err := c.DoJSON(t.Context(), apiclient.Request{
		Method: http.MethodPost,
		Path:   "/echo?a=1",
		Query:  url.Values{"b": {"2 3"}},
		Body:   map[string]any{"to": []string{"a@example.com"}},
		Header: http.Header{"idempotency-key": {"k1"}},
	}, &got, http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	want := seen{Method: "POST", URI: "/echo?a=1&b=2+3", Authorization: "Bearer s3cret", ContentType: "application/json",
		IdempotencyKey: "k1", Body: `{"to":["a@example.com"]}`}
	if got != want {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
	if resp.Header.Get("X-Seen") != "yes" || resp.Status != http.StatusAccepted {
		t.Errorf("answer not returned: %d %v", resp.Status, resp.Header)
	}

	// No token, no body: neither header is sent.
	got = seen{}
	bare := &apiclient.Client{BaseURL: srv.URL}
	if _, err := bare.DoJSON(t.Context(), apiclient.Request{Path: "/echo"}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got != (seen{Method: "GET", URI: "/echo"}) {
		t.Errorf("bare GET: server saw %+v", got)
	}

	// A header given by the caller wins over the one the client sets.
	got = seen{}
	if _, err := c.DoJSON(t.Context(), apiclient.Request{Path: "/echo", Header: http.Header{"Authorization": {"Basic x"}}}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got.Authorization != "Basic x" {
		t.Errorf("Authorization = %q, want the caller's", got.Authorization)
	}
}

func TestWithoutBaseURLThePathIsTheURL(t *testing.T) {
	srv := echoServer(t)
	var got seen
	if _, err := (&apiclient.Client{}).DoJSON(t.Context(), apiclient.Request{Path: srv.URL + "/whole"}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got.URI != "/whole" {
		t.Errorf("server saw %q", got.URI)
	}
}

func TestRawBodyIsSentAsIs(t *testing.T) {
	srv := echoServer(t)
	c := &apiclient.Client{BaseURL: srv.URL}
	var got seen
	raw := []byte("{\"to\": [\x00 not json")
	if _, err := c.DoJSON(t.Context(), apiclient.Request{Method: http.MethodPost, Path: "/echo", RawBody: raw}, &got, http.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	if got.Body != string(raw) || got.ContentType != "application/json" {
		t.Errorf("server got body %q (%q), want %q", got.Body, got.ContentType, raw)
	}
	_, err := c.Do(t.Context(), apiclient.Request{Path: "/echo", Body: 1, RawBody: raw})
	if err == nil || !strings.Contains(err.Error(), "both Body and RawBody") {
		t.Errorf("Body and RawBody together: err = %v", err)
	}
}

func TestUnexpectedStatusIsAnError(t *testing.T) {
	srv := echoServer(t)
	c := &apiclient.Client{Service: "mail", BaseURL: srv.URL}
	ctx := t.Context()

	resp, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodPost, Path: "/contract-error"}, nil, http.StatusAccepted)
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *apiclient.Error", err, err)
	}
	if apiErr.Status != http.StatusConflict || apiErr.Code != "idempotency_conflict" || apiErr.Message != "key used" ||
		apiErr.Method != "POST" || apiErr.URL != srv.URL+"/contract-error" || apiErr.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Error = %+v", apiErr)
	}
	if resp.Status != http.StatusConflict || !strings.Contains(string(apiErr.Body), "idempotency_conflict") {
		t.Errorf("answer not kept: %d %q", resp.Status, apiErr.Body)
	}
	if want := "mail POST " + srv.URL + "/contract-error: 409 idempotency_conflict: key used"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if apiclient.StatusOf(err) != http.StatusConflict || apiclient.ErrorCodeOf(err) != "idempotency_conflict" {
		t.Errorf("StatusOf = %d, ErrorCodeOf = %q", apiclient.StatusOf(err), apiclient.ErrorCodeOf(err))
	}
	if errors.Is(err, apiclient.ErrNoAnswer) {
		t.Errorf("a refusal is an answer: %v", err)
	}
	// Wrapped, it is still found.
	if wrapped := fmt.Errorf("resend: %w", err); apiclient.StatusOf(wrapped) != http.StatusConflict {
		t.Errorf("StatusOf a wrapped error = %d", apiclient.StatusOf(wrapped))
	}

	// A body that is not the contract's shape is still reported.
	_, err = c.DoJSON(ctx, apiclient.Request{Path: "/text-error"}, &struct{}{})
	if apiclient.StatusOf(err) != http.StatusBadRequest || apiclient.ErrorCodeOf(err) != "" || !strings.Contains(err.Error(), `400 "Error: no search query"`) {
		t.Errorf("text error: %v", err)
	}
	// An empty one is named by its status.
	_, err = c.DoJSON(ctx, apiclient.Request{Path: "/empty-error"}, nil)
	if want := "mail GET " + srv.URL + "/empty-error: 502 Bad Gateway"; err == nil || err.Error() != want {
		t.Errorf("empty error: %v, want %q", err, want)
	}

	// The default expectation is 200; 202 is not it.
	if _, err := c.DoJSON(ctx, apiclient.Request{Path: "/echo"}, &seen{}); apiclient.StatusOf(err) != http.StatusAccepted {
		t.Errorf("a 202 where 200 is expected: %v", err)
	}

	// An expected answer without a body leaves out alone.
	out := seen{Method: "untouched"}
	if _, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodDelete, Path: "/no-content"}, &out, http.StatusNoContent); err != nil || out.Method != "untouched" {
		t.Errorf("204: %v, out %+v", err, out)
	}

	// Do returns any status as an answer.
	if resp, err := c.Do(ctx, apiclient.Request{Path: "/contract-error"}); err != nil || resp.Status != http.StatusConflict {
		t.Errorf("Do of a 409: %d %v", resp.Status, err)
	}
}

// A call that got no complete answer is ErrNoAnswer — unreachable, timed
// out, cut off — and one whose answer cannot be read is not: a caller can
// wait out the first and not the second.
func TestNoAnswerIsToldApartFromABadAnswer(t *testing.T) {
	srv := echoServer(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	ctx := t.Context()

	for _, tc := range []struct {
		name     string
		c        apiclient.Client
		path     string
		noAnswer bool
		says     string
	}{
		{"connection refused", apiclient.Client{BaseURL: closedURL}, "/echo", true, "connection refused"},
		{"timeout", apiclient.Client{BaseURL: srv.URL, Timeout: 50 * time.Millisecond}, "/slow", true, "deadline exceeded"},
		{"cut off", apiclient.Client{BaseURL: srv.URL}, "/cut", true, "reading the body"},
		{"undecodable", apiclient.Client{BaseURL: srv.URL}, "/garbage", false, `decode "<html>"`},
		{"too large", apiclient.Client{BaseURL: srv.URL, MaxBody: 50}, "/big", false, "larger than 50 bytes"},
	} {
		start := time.Now()
		_, err := tc.c.DoJSON(ctx, apiclient.Request{Path: tc.path}, &struct{}{})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if got := errors.Is(err, apiclient.ErrNoAnswer); got != tc.noAnswer || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v: ErrNoAnswer %v, want %v, naming %q", tc.name, err, got, tc.noAnswer, tc.says)
		}
		if apiclient.StatusOf(err) != 0 {
			t.Errorf("%s: StatusOf = %d, want 0", tc.name, apiclient.StatusOf(err))
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("%s: took %s", tc.name, time.Since(start))
		}
	}
	// The prefix names the call once; net/http's *url.Error would repeat it.
	_, err := (&apiclient.Client{Service: "mail", BaseURL: closedURL}).Do(ctx, apiclient.Request{Path: "/x"})
	if err == nil || strings.Count(err.Error(), closedURL) != 1 || !strings.HasPrefix(err.Error(), "mail GET "+closedURL+"/x: ") {
		t.Errorf("transport error: %v", err)
	}
}

// The caller's *http.Client carries the request: its transport sees it.
func TestTheCallersHTTPClientCarriesTheRequest(t *testing.T) {
	srv := echoServer(t)
	var through []string
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		through = append(through, r.Method+" "+r.URL.Path)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := &apiclient.Client{BaseURL: srv.URL, HTTP: hc}
	if _, err := c.Do(t.Context(), apiclient.Request{Method: http.MethodPut, Path: "/via"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(through, []string{"PUT /via"}) {
		t.Errorf("the transport saw %q", through)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestListPageDecodesItemsAndCursor(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RequestURI())
		_, _ = io.WriteString(w, `{"items":[{"n":1},{"n":2,"later":true}],"next_cursor":"c2","total":9}`)
	}))
	t.Cleanup(srv.Close)
	type item struct {
		N int `json:"n"`
	}
	c := &apiclient.Client{BaseURL: srv.URL}
	items, next, err := apiclient.ListPage[item](context.Background(), c, "/list", url.Values{"status": {"dead"}})
	if err != nil || !slices.Equal(items, []item{{1}, {2}}) || next != "c2" {
		t.Fatalf("items %v, next %q, err %v", items, next, err)
	}
	if !slices.Equal(asked, []string{"/list?status=dead"}) {
		t.Errorf("asked %q", asked)
	}
}

func TestAllPagesFollowsTheCursorAndStopsOnARepeat(t *testing.T) {
	pages := map[string]struct {
		items []int
		next  string
	}{"": {[]int{1, 2}, "b"}, "b": {[]int{3}, "c"}, "c": {[]int{4}, ""}}
	var asked []string
	got, err := apiclient.AllPages("numbers", "", func(cursor string) ([]int, string, error) {
		asked = append(asked, cursor)
		p := pages[cursor]
		return p.items, p.next, nil
	})
	if err != nil || !slices.Equal(got, []int{1, 2, 3, 4}) || !slices.Equal(asked, []string{"", "b", "c"}) {
		t.Fatalf("got %v, asked %q, err %v", got, asked, err)
	}

	// The same cursor handed back, at once or after other pages, would
	// loop for ever.
	_, err = apiclient.AllPages("numbers", "x", func(cursor string) ([]int, string, error) { return []int{1}, "x", nil })
	if err == nil || !strings.Contains(err.Error(), `numbers: next_cursor "x" repeats`) {
		t.Fatalf("a repeated cursor: err %v", err)
	}
	cycle := map[string]string{"": "a", "a": "b", "b": "a"}
	got, err = apiclient.AllPages("numbers", "", func(cursor string) ([]int, string, error) { return []int{len(cursor)}, cycle[cursor], nil })
	if err == nil || !strings.Contains(err.Error(), `next_cursor "a" repeats`) || len(got) != 3 {
		t.Fatalf("a cycle: got %v, err %v", got, err)
	}

	// An empty page ends the list whatever its cursor says; an error ends
	// it with what was read.
	got, err = apiclient.AllPages("numbers", "", func(cursor string) ([]int, string, error) { return nil, "more", nil })
	if err != nil || len(got) != 0 {
		t.Fatalf("an empty page: got %v, err %v", got, err)
	}
	boom := errors.New("boom")
	got, err = apiclient.AllPages("numbers", "", func(cursor string) ([]int, string, error) {
		if cursor == "" {
			return []int{1}, "n", nil
		}
		return nil, "", boom
	})
	if !errors.Is(err, boom) || !slices.Equal(got, []int{1}) {
		t.Fatalf("a failing page: got %v, err %v", got, err)
	}
}
