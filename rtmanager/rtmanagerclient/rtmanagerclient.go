// Package rtmanagerclient is the client of the Runtime Manager's internal
// API (rtmanager/api/openapi.yaml, docs/rtmanager.md): the runtimes of
// games, listed and read. It declares the API's types itself and uses none
// of the service's code. Its caller is the test harness.
package rtmanagerclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"galaxy/platform/apiclient"
)

// Runtime is the Runtime Manager's record of a game's runtime as its API
// shows it. It is decoded leniently: the contract may add fields.
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

// Query is the list's filter and paging; empty fields are not sent (the
// service refuses unknown and repeated parameters).
type Query struct {
	States []string // sent as one comma-separated state parameter
	Limit  int      // 1–MaxPage; 0 leaves the service's default (100)
	Cursor string   // a game ID: the next_cursor of the previous page
}

// Values is q as the list's query string.
func (q Query) Values() url.Values {
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

// MaxPage is the most runtimes the list gives a page.
const MaxPage = 1000

const runtimesPath = "/api/v1/internal/runtimes"

// Client calls the Runtime Manager's internal API. Its apiclient.Client's
// Do and DoJSON are there for requests the typed methods do not make.
type Client struct{ apiclient.Client }

// New returns a client of the Runtime Manager API at baseURL
// (http://host:port) that sends token (RTMANAGER_INTERNAL_API_TOKEN; empty
// sends none) through hc (nil: http.DefaultClient).
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{apiclient.Client{Service: "rtmanager", BaseURL: baseURL, Token: token, HTTP: hc}}
}

// Runtimes returns one page of the runtimes matching q, ordered by game ID,
// and the cursor of the next page ("" on the last one).
func (c *Client) Runtimes(ctx context.Context, q Query) ([]Runtime, string, error) {
	return apiclient.ListPage[Runtime](ctx, &c.Client, runtimesPath, q.Values())
}

// AllRuntimes returns every runtime matching q, following next_cursor from
// q.Cursor to the last page (MaxPage a page unless q.Limit says otherwise).
func (c *Client) AllRuntimes(ctx context.Context, q Query) ([]Runtime, error) {
	if q.Limit == 0 {
		q.Limit = MaxPage
	}
	return apiclient.AllPages("runtimes", q.Cursor, func(cursor string) ([]Runtime, string, error) {
		q.Cursor = cursor
		return c.Runtimes(ctx, q)
	})
}

// Runtime returns the runtime of gameID; a game without one is an
// *apiclient.Error with status 404 (apiclient.StatusOf).
func (c *Client) Runtime(ctx context.Context, gameID string) (Runtime, error) {
	var rt Runtime
	_, err := c.DoJSON(ctx, apiclient.Request{Path: runtimesPath + "/" + url.PathEscape(gameID)}, &rt)
	return rt, err
}
