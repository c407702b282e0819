package harness

import (
	"context"

	"galaxy/rtmanager/rtmanagerclient"
)

// The Runtime Manager's API types (rtmanager/rtmanagerclient).
type (
	// Runtime is the Runtime Manager's record of a game's runtime.
	Runtime      = rtmanagerclient.Runtime
	RuntimeQuery = rtmanagerclient.Query
)

// RuntimeClient calls the Runtime Manager's internal API through
// rtmanager/rtmanagerclient, every answer checked against the service's
// OpenAPI document.
type RuntimeClient struct {
	BaseURL string // http://host:port
	Token   string // RTMANAGER_INTERNAL_API_TOKEN, when the service has one
}

func (c *RuntimeClient) api() *rtmanagerclient.Client {
	return &rtmanagerclient.Client{Client: checkedAPI("rtmanager", c.BaseURL, c.Token)}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *RuntimeClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.api().Client, method, path, body)
}

// Runtimes is rtmanagerclient.Client.Runtimes: one page matching q,
// ordered by game ID.
func (c *RuntimeClient) Runtimes(ctx context.Context, q RuntimeQuery) ([]Runtime, string, error) {
	return c.api().Runtimes(ctx, q)
}

// AllRuntimes is rtmanagerclient.Client.AllRuntimes: every page matching q.
func (c *RuntimeClient) AllRuntimes(ctx context.Context, q RuntimeQuery) ([]Runtime, error) {
	return c.api().AllRuntimes(ctx, q)
}

// Runtime is rtmanagerclient.Client.Runtime: a game without a runtime is a
// 404 *APIError (StatusOf).
func (c *RuntimeClient) Runtime(ctx context.Context, gameID string) (Runtime, error) {
	return c.api().Runtime(ctx, gameID)
}

// RuntimeClient returns a client of the pipeline's Runtime Manager.
func (p *Pipeline) RuntimeClient() *RuntimeClient {
	return &RuntimeClient{BaseURL: p.RTManagerURL, Token: p.Tokens.RTManager}
}
