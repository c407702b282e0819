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

// RuntimeClient is the Runtime Manager's client (rtmanagerclient) with every answer checked
// against the service's OpenAPI document and each call bounded by
// DefaultRequestTimeout: its methods are rtmanagerclient.Client's, and Do
// sends a raw request.
type RuntimeClient struct {
	*rtmanagerclient.Client
}

// NewRuntimeClient returns a client of the Runtime Manager API at baseURL
// (http://host:port), sending token (RTMANAGER_INTERNAL_API_TOKEN; "" for none).
func NewRuntimeClient(baseURL, token string) *RuntimeClient {
	return &RuntimeClient{&rtmanagerclient.Client{Client: checkedAPI("rtmanager", baseURL, token)}}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *RuntimeClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.Client.Client, method, path, body)
}

// RuntimeClient returns a client of the pipeline's Runtime Manager.
func (p *Pipeline) RuntimeClient() *RuntimeClient {
	return NewRuntimeClient(p.RTManagerURL, p.Tokens.RTManager)
}
