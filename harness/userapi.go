package harness

import (
	"context"

	"galaxy/user/userclient"
)

// The User Service's API types (user/userclient).
type (
	// User is the User Service's user.
	User          = userclient.User
	NewUser       = userclient.NewUser
	UserPatch     = userclient.Patch
	ResolvedUsers = userclient.Resolved
)

// UserClient is the User Service's client (userclient) with every answer checked
// against the service's OpenAPI document and each call bounded by
// DefaultRequestTimeout: its methods are userclient.Client's, and Do
// sends a raw request.
type UserClient struct {
	*userclient.Client
}

// NewUserClient returns a client of the User Service API at baseURL
// (http://host:port), sending token (USERSERVICE_INTERNAL_API_TOKEN; "" for none).
func NewUserClient(baseURL, token string) *UserClient {
	return &UserClient{&userclient.Client{Client: checkedAPI("userservice", baseURL, token)}}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *UserClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.Client.Client, method, path, body)
}

// UserClient returns a client of the pipeline's User Service.
func (p *Pipeline) UserClient() *UserClient {
	return NewUserClient(p.UserURL, p.Tokens.User)
}
