package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"galaxy/harness/openapi"
)

// DefaultRequestTimeout bounds one API request whose Request.Timeout is zero.
// It is above Mail's default operator budget (MAIL_OPERATOR_REQUEST_TIMEOUT,
// 10s), so a resend that uses all of it still gets its answer; a spec's own
// context usually ends sooner.
const DefaultRequestTimeout = 15 * time.Second

// apiClient carries every request of the typed clients. Its transport is
// the default one (connections reused across specs); the time limit is per
// request, in Do, so that a caller can ask for a longer one.
var apiClient = &http.Client{}

// Request is one call of an HTTP API.
type Request struct {
	Method string // GET when empty
	URL    string
	// Token, when not empty, is sent as "Authorization: Bearer <Token>" (the
	// services' <P>_INTERNAL_API_TOKEN).
	Token string
	// Body, when not nil, is sent JSON-encoded. RawBody is sent as it is,
	// for inputs that are not valid JSON on purpose; give at most one.
	Body    any
	RawBody []byte
	// Header holds further headers (Idempotency-Key, a hand-made
	// Authorization …); they win over the ones Do sets.
	Header http.Header
	// Timeout bounds the request, answer body included; zero means
	// DefaultRequestTimeout.
	Timeout time.Duration
	// Service, when set, names the internal API that answers
	// ("userservice", "mail", "notification", "rtmanager"): Do checks the
	// answer against that service's OpenAPI document (harness/openapi) and
	// returns, with the answer, an error naming what does not match. A
	// path the document does not declare is not checked. The harness's
	// clients set it, so every answer a spec gets through them is checked.
	Service string
}

// Response is an answer as received, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// APIError is an answer with a status the caller did not expect. Code and
// Message are the contract's error body ({"error":{"code","message"}}) when
// the answer has one; Body is the answer as received either way, so an
// answer that is not the contract's shape (a proxy's, Mailpit's text) is
// still reported.
type APIError struct {
	Method  string
	URL     string
	Status  int
	Code    string
	Message string
	Header  http.Header
	Body    []byte
}

// maxErrorBody bounds the part of an unexpected body quoted in an error
// message; the whole body stays in APIError.Body.
const maxErrorBody = 2 << 10

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, e.Code, e.Message)
	}
	body := e.Body
	suffix := ""
	if len(body) > maxErrorBody {
		body, suffix = body[:maxErrorBody], "…"
	}
	return fmt.Sprintf("%s %s: %d %q%s", e.Method, e.URL, e.Status, body, suffix)
}

// StatusOf returns the status of the *APIError in err's chain, or 0 when
// there is none (no answer arrived, or the error is of another kind).
func StatusOf(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// ErrorCodeOf returns the contract error code of the *APIError in err's
// chain ("not_found", "idempotency_conflict" …), or "" when there is none.
func ErrorCodeOf(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// Do sends r and returns the answer whatever its status. The error is for a
// request that got no complete answer (refused connection, timeout, body cut
// short) or could not be built.
func Do(ctx context.Context, r Request) (Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	body, err := requestBody(r)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, r.URL, err)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, rd)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, r.URL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, vs := range r.Header {
		req.Header[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, r.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %d, reading the body: %w", method, r.URL, resp.StatusCode, err)
	}
	got := Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if r.Service != "" {
		if err := openapi.Validate(r.Service, req, resp.StatusCode, resp.Header, raw); err != nil && !errors.Is(err, openapi.ErrNoRoute) {
			return got, err
		}
	}
	return got, nil
}

func requestBody(r Request) ([]byte, error) {
	switch {
	case r.Body != nil && r.RawBody != nil:
		return nil, errors.New("request has both Body and RawBody")
	case r.RawBody != nil:
		return r.RawBody, nil
	case r.Body != nil:
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

// DoJSON sends r and, when the answer's status is one of want (200 when want
// is empty), decodes its body into out (unless out is nil or the body is
// empty). Unknown fields are ignored: the contract may add fields. Any other
// status is an *APIError. The answer is returned in every case it arrived,
// so a caller can read a header of a success or the body of a failure.
func DoJSON(ctx context.Context, r Request, out any, want ...int) (Response, error) {
	resp, err := Do(ctx, r)
	if err != nil {
		return resp, err
	}
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !slices.Contains(want, resp.Status) {
		return resp, newAPIError(method, r.URL, resp)
	}
	if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
		return resp, nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp, fmt.Errorf("%s %s: %d, decode %q: %w", method, r.URL, resp.Status, truncate(resp.Body), err)
	}
	return resp, nil
}

func newAPIError(method, url string, resp Response) *APIError {
	e := &APIError{Method: method, URL: url, Status: resp.Status, Header: resp.Header, Body: resp.Body}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(resp.Body, &body) == nil && body.Error != nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	return e
}

func truncate(b []byte) string {
	if len(b) > maxErrorBody {
		return string(b[:maxErrorBody]) + "…"
	}
	return string(b)
}

// GetJSON GETs url and decodes a 200 answer into out; any other status is an
// *APIError carrying the body.
func GetJSON(ctx context.Context, url string, out any) error {
	_, err := DoJSON(ctx, Request{URL: url}, out)
	return err
}

// joinURL joins a base URL and a path that starts with "/", tolerating a
// base given with a trailing slash.
func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}

// listPage GETs one page of a cursor-paged list of the internal APIs,
// {"items":[…],"next_cursor":"…"}, at baseURL+path with query.
func listPage[T any](ctx context.Context, service, baseURL, token, path string, query url.Values) ([]T, string, error) {
	var page struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	if enc := query.Encode(); enc != "" {
		path += "?" + enc
	}
	_, err := DoJSON(ctx, Request{URL: joinURL(baseURL, path), Token: token, Service: service}, &page)
	return page.Items, page.NextCursor, err
}

// allPages follows next_cursor from cursor to the last page, fetching each
// with page; what names the list in an error. A cursor handed back again
// would loop for ever, so it is an error.
func allPages[T any](what, cursor string, page func(cursor string) ([]T, string, error)) ([]T, error) {
	var out []T
	for {
		items, next, err := page(cursor)
		if err != nil {
			return out, err
		}
		out = append(out, items...)
		if next == "" || len(items) == 0 {
			return out, nil
		}
		if next == cursor {
			return out, fmt.Errorf("%s: next_cursor %q repeats the cursor of the page", what, next)
		}
		cursor = next
	}
}
