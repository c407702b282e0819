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

// UserClient calls the User Service's internal API through user/userclient,
// every answer checked against the service's OpenAPI document.
type UserClient struct {
	BaseURL string // http://host:port
	Token   string // USERSERVICE_INTERNAL_API_TOKEN, when the service has one
}

func (c *UserClient) api() *userclient.Client {
	return &userclient.Client{Client: checkedAPI("userservice", c.BaseURL, c.Token)}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *UserClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.api().Client, method, path, body)
}

// Create is userclient.Client.Create: 201, or an *APIError (400, 409).
func (c *UserClient) Create(ctx context.Context, u NewUser) (User, error) {
	return c.api().Create(ctx, u)
}

// Get is userclient.Client.Get: an unknown user is a 404 *APIError.
func (c *UserClient) Get(ctx context.Context, id string) (User, error) {
	return c.api().Get(ctx, id)
}

// Exists is userclient.Client.Exists.
func (c *UserClient) Exists(ctx context.Context, id string) (bool, error) {
	return c.api().Exists(ctx, id)
}

// Patch is userclient.Client.Patch: the non-nil fields of p changed.
func (c *UserClient) Patch(ctx context.Context, id string, p UserPatch) (User, error) {
	return c.api().Patch(ctx, id, p)
}

// Delete is userclient.Client.Delete: 204, an unknown user a 404 *APIError.
func (c *UserClient) Delete(ctx context.Context, id string) error {
	return c.api().Delete(ctx, id)
}

// Resolve is userclient.Client.Resolve: at most userclient.MaxResolve IDs.
func (c *UserClient) Resolve(ctx context.Context, ids []string) (ResolvedUsers, error) {
	return c.api().Resolve(ctx, ids)
}

// UserClient returns a client of the pipeline's User Service.
func (p *Pipeline) UserClient() *UserClient {
	return &UserClient{BaseURL: p.UserURL, Token: p.Tokens.User}
}
