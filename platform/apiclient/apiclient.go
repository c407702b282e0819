// Package apiclient calls the platform's internal JSON APIs as they all
// behave (docs/contracts.md §5): JSON bodies, the optional bearer token
// (<P>_INTERNAL_API_TOKEN), errors as {"error":{"code","message"}} and
// cursor-paged lists {"items":[…],"next_cursor":"…"}. Each service's typed
// client (mail/mailclient, notification/notificationclient,
// user/userclient, rtmanager/rtmanagerclient) is built on it, so these
// conventions are implemented once.
//
// The caller's *http.Client carries every request: a service passes one
// with an otelhttp transport, the test harness one whose transport checks
// each answer against the service's OpenAPI document.
package apiclient

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
)

// DefaultMaxBody bounds an answer read into memory when Client.MaxBody is
// zero: well above the largest answer, a page of 500 items.
const DefaultMaxBody = 64 << 20

// Client calls one service's internal API.
type Client struct {
	// Service names the service in errors ("mail"); empty names none.
	Service string
	// BaseURL is http://host:port; a trailing slash is tolerated. Empty
	// makes each Request.Path a whole URL.
	BaseURL string
	// Token, when not empty, is sent as "Authorization: Bearer <Token>".
	Token string
	// HTTP carries the requests; nil is http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each call, the answer's body included; zero leaves
	// the bound to the caller's context.
	Timeout time.Duration
	// MaxBody bounds the answer's body; a longer one is an error. Zero is
	// DefaultMaxBody.
	MaxBody int64
}

// Request is one call.
type Request struct {
	Method string // GET when empty
	// Path is joined to the client's BaseURL ("/api/v1/internal/…", with a
	// query string or not).
	Path string
	// Query, when not empty, is appended to Path as its query string.
	Query url.Values
	// Body, when not nil, is sent JSON-encoded. RawBody is sent as it is,
	// for inputs that are not valid JSON on purpose; give at most one.
	Body    any
	RawBody []byte
	// Header holds further headers (Idempotency-Key, a hand-made
	// Authorization …); they win over the ones the client sets.
	Header http.Header
}

// Response is an answer as received, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrNoAnswer is in the chain of the error of a call that got no complete
// answer: the service was unreachable, the call timed out or was
// cancelled, or the answer was cut off. A caller can tell such an outage
// apart from a refusal (an *Error) or an answer it cannot read.
var ErrNoAnswer = errors.New("no complete answer")

type noAnswer struct{ err error }

func (e noAnswer) Error() string      { return e.err.Error() }
func (e noAnswer) Unwrap() error      { return e.err }
func (noAnswer) Is(target error) bool { return target == ErrNoAnswer }

// Do sends r and returns the answer whatever its status. The error is for
// a call that got no complete answer (ErrNoAnswer), one whose answer is
// larger than MaxBody, or one that could not be built.
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	u := c.url(r)
	fail := func(err error) error { return fmt.Errorf("%s: %w", c.what(method, u), err) }
	body, err := encodeBody(r)
	if err != nil {
		return Response{}, fail(err)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return Response{}, fail(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, vs := range r.Header {
		req.Header[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The prefix names the method and URL already; *url.Error would
		// say them again.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return Response{}, fail(noAnswer{err})
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Response{}, fail(noAnswer{fmt.Errorf("%d, reading the body: %w", resp.StatusCode, err)})
	}
	if int64(len(raw)) > limit {
		return Response{}, fail(fmt.Errorf("%d, an answer larger than %d bytes", resp.StatusCode, limit))
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// DoJSON sends r and, when the answer's status is one of want (200 when
// want is empty), decodes its body into out (unless out is nil or the body
// is empty). Unknown fields are ignored: the contract may add fields. Any
// other status is an *Error. The answer is returned in every case it
// arrived, so a caller can read a header of a success or the body of a
// failure.
func (c *Client) DoJSON(ctx context.Context, r Request, out any, want ...int) (Response, error) {
	resp, err := c.Do(ctx, r)
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
		return resp, newError(c.Service, method, c.url(r), resp)
	}
	if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
		return resp, nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp, fmt.Errorf("%s: %d, decode %q: %w", c.what(method, c.url(r)), resp.Status, truncate(resp.Body), err)
	}
	return resp, nil
}

func (c *Client) url(r Request) string {
	u := strings.TrimRight(c.BaseURL, "/") + r.Path
	if len(r.Query) > 0 {
		sep := "?"
		if strings.Contains(r.Path, "?") {
			sep = "&"
		}
		u += sep + r.Query.Encode()
	}
	return u
}

// what names a call in errors: "mail GET http://…/deliveries".
func (c *Client) what(method, u string) string {
	if c.Service == "" {
		return method + " " + u
	}
	return c.Service + " " + method + " " + u
}

func encodeBody(r Request) ([]byte, error) {
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

// Error is an answer with a status the caller did not expect. Code and
// Message are the contract's error body ({"error":{"code","message"}}) when
// the answer has one; Body is the answer as received either way, so an
// answer that is not the contract's shape (a proxy's, a text) is still
// reported.
type Error struct {
	Service string // as the client names it; may be empty
	Method  string
	URL     string
	Status  int
	Code    string
	Message string
	Header  http.Header
	Body    []byte
}

// maxErrorBody bounds the part of an unexpected body quoted in an error
// message; the whole body stays in Error.Body.
const maxErrorBody = 2 << 10

func (e *Error) Error() string {
	what := e.Method + " " + e.URL
	if e.Service != "" {
		what = e.Service + " " + what
	}
	switch {
	case e.Code != "" && e.Message != "":
		return fmt.Sprintf("%s: %d %s: %s", what, e.Status, e.Code, e.Message)
	case e.Code != "":
		return fmt.Sprintf("%s: %d %s", what, e.Status, e.Code)
	case len(bytes.TrimSpace(e.Body)) == 0:
		return fmt.Sprintf("%s: %d %s", what, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s: %d %q", what, e.Status, truncate(e.Body))
}

func newError(service, method, u string, resp Response) *Error {
	e := &Error{Service: service, Method: method, URL: u, Status: resp.Status, Header: resp.Header, Body: resp.Body}
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

// StatusOf returns the status of the *Error in err's chain, or 0 when
// there is none (no answer arrived, or the error is of another kind).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ErrorCodeOf returns the contract error code of the *Error in err's chain
// ("not_found", "idempotency_conflict" …), or "" when there is none.
func ErrorCodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func truncate(b []byte) string {
	if len(b) > maxErrorBody {
		return string(b[:maxErrorBody]) + "…"
	}
	return string(b)
}
