package harness

import (
	"context"
	"net/http"
	"strings"
	"time"

	"galaxy/harness/openapi"
	"galaxy/platform/apiclient"
)

// DefaultRequestTimeout bounds one API request whose Request.Timeout is zero,
// and each call of the typed clients. It is above Mail's default operator
// budget (MAIL_OPERATOR_REQUEST_TIMEOUT, 10s), so a resend that uses all of
// it still gets its answer; a spec's own context usually ends sooner.
const DefaultRequestTimeout = 15 * time.Second

// Request is one call of an HTTP API, sent through platform/apiclient as
// the services' own clients send theirs.
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
	// ("userservice", "mail", "notification", "rtmanager"): the answer is
	// checked against that service's OpenAPI document (harness/openapi),
	// and one that does not match is an error naming what does not. A path
	// the document does not declare is not checked. The harness's clients
	// check every answer they get the same way.
	Service string
}

// Response is an answer as received, whatever its status.
type Response = apiclient.Response

// APIError is an answer with a status the caller did not expect: the
// contract's error code and message when the body has them, and the body
// as received either way.
type APIError = apiclient.Error

// StatusOf returns the status of the *APIError in err's chain, or 0 when
// there is none (no answer arrived, or the error is of another kind).
func StatusOf(err error) int { return apiclient.StatusOf(err) }

// ErrorCodeOf returns the contract error code of the *APIError in err's
// chain ("not_found", "idempotency_conflict" …), or "" when there is none.
func ErrorCodeOf(err error) string { return apiclient.ErrorCodeOf(err) }

// httpClient carries a request to service's API ("" for any other server):
// every answer of one of the four APIs is checked against its document on
// the way. Both share http.DefaultTransport, so connections are reused
// across specs.
func httpClient(service string) *http.Client {
	if service == "" {
		return http.DefaultClient
	}
	return openapi.Client(service)
}

// checkedAPI is the apiclient.Client of one of the four APIs at baseURL
// that the typed clients are built on: answers checked, each call bounded
// by DefaultRequestTimeout.
func checkedAPI(service, baseURL, token string) apiclient.Client {
	return apiclient.Client{Service: service, BaseURL: baseURL, Token: token, HTTP: httpClient(service), Timeout: DefaultRequestTimeout}
}

func (r Request) client() (*apiclient.Client, apiclient.Request) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	c := &apiclient.Client{Token: r.Token, HTTP: httpClient(r.Service), Timeout: timeout}
	return c, apiclient.Request{Method: r.Method, Path: r.URL, Body: r.Body, RawBody: r.RawBody, Header: r.Header}
}

// Do sends r and returns the answer whatever its status. The error is for a
// request that got no complete answer (refused connection, timeout, body cut
// short), an answer its service's document does not allow, or a request
// that could not be built.
func Do(ctx context.Context, r Request) (Response, error) {
	c, req := r.client()
	return c.Do(ctx, req)
}

// DoJSON sends r and, when the answer's status is one of want (200 when want
// is empty), decodes its body into out (unless out is nil or the body is
// empty). Unknown fields are ignored: the contract may add fields. Any other
// status is an *APIError. The answer is returned in every case it arrived,
// so a caller can read a header of a success or the body of a failure.
func DoJSON(ctx context.Context, r Request, out any, want ...int) (Response, error) {
	c, req := r.client()
	return c.DoJSON(ctx, req, out, want...)
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

// rawDo is the typed clients' Do: one request to the API (path from
// /api/…) with the client's token, the answer whatever its status, for
// specs about a 400, a header or the exact body.
func rawDo(ctx context.Context, c apiclient.Client, method, path string, body any) (Response, error) {
	return c.Do(ctx, apiclient.Request{Method: method, Path: path, Body: body})
}
