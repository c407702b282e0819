package harness

import (
	"context"
	"net/url"
	"strconv"
	"strings"
)

// Runtime is the Runtime Manager's record of a game's runtime as its API
// shows it (CONTRACTS §5, docs/rtmanager.md).
type Runtime struct {
	GameID string `json:"game_id"`
	// State is starting, running, unhealthy, stopped or failed.
	State            string `json:"state"`
	ImageRef         string `json:"image_ref"`
	ContainerID      string `json:"container_id"`
	LastErrorCode    string `json:"last_error_code"`
	LastErrorMessage string `json:"last_error_message"`
	UpdatedAtMS      int64  `json:"updated_at_ms"`
}

// RuntimeQuery is the list's filter and paging; empty fields are not sent
// (the service refuses unknown and repeated parameters).
type RuntimeQuery struct {
	States []string // sent as one comma-separated state parameter
	Limit  int      // 1–1000; 0 leaves the service's default (100)
	Cursor string   // a game ID: the next_cursor of the previous page
}

// Values is q as the list's query string.
func (q RuntimeQuery) Values() url.Values {
	v := url.Values{}
	if len(q.States) > 0 {
		v.Set("state", strings.Join(q.States, ","))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// RuntimeClient calls the Runtime Manager's internal API.
type RuntimeClient struct {
	BaseURL string // http://host:port
	Token   string // RTMANAGER_INTERNAL_API_TOKEN, when the service has one
}

const maxRuntimePage = 1000

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *RuntimeClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return Do(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "rtmanager", Body: body})
}

// Runtimes returns one page of the runtimes matching q, ordered by game ID,
// and the cursor of the next page ("" on the last one).
func (c *RuntimeClient) Runtimes(ctx context.Context, q RuntimeQuery) ([]Runtime, string, error) {
	return listPage[Runtime](ctx, "rtmanager", c.BaseURL, c.Token, "/api/v1/internal/runtimes", q.Values())
}

// AllRuntimes returns every runtime matching q, following next_cursor from
// q.Cursor to the last page (1000 a page unless q.Limit says otherwise).
func (c *RuntimeClient) AllRuntimes(ctx context.Context, q RuntimeQuery) ([]Runtime, error) {
	if q.Limit == 0 {
		q.Limit = maxRuntimePage
	}
	return allPages("runtimes", q.Cursor, func(cursor string) ([]Runtime, string, error) {
		q.Cursor = cursor
		return c.Runtimes(ctx, q)
	})
}

// Runtime returns the runtime of gameID; a game without one is an
// *APIError with status 404 (StatusOf).
func (c *RuntimeClient) Runtime(ctx context.Context, gameID string) (Runtime, error) {
	var rt Runtime
	_, err := DoJSON(ctx, Request{
		URL:   joinURL(c.BaseURL, "/api/v1/internal/runtimes/"+url.PathEscape(gameID)),
		Token: c.Token, Service: "rtmanager",
	}, &rt)
	return rt, err
}

// RuntimeClient returns a client of the pipeline's Runtime Manager.
func (p *Pipeline) RuntimeClient() *RuntimeClient {
	return &RuntimeClient{BaseURL: p.RTManagerURL, Token: p.Tokens.RTManager}
}
