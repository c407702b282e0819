package harness

import (
	"context"
	"net/http"
	"net/url"
)

// User is the User Service's user as its API shows it (CONTRACTS §5,
// docs/user.md).
type User struct {
	UserID             string `json:"user_id"`
	Email              string `json:"email"`
	DisplayName        string `json:"display_name"`
	Locale             string `json:"locale"`
	EmailNotifications bool   `json:"email_notifications"`
	CreatedAtMS        int64  `json:"created_at_ms"`
	UpdatedAtMS        int64  `json:"updated_at_ms"`
}

// NewUser is the body of a create. Empty fields are left out, so the
// service applies its defaults: a generated user_id, the address's local
// part as display_name, locale en, email_notifications true.
type NewUser struct {
	UserID             string `json:"user_id,omitempty"`
	Email              string `json:"email"`
	DisplayName        string `json:"display_name,omitempty"`
	Locale             string `json:"locale,omitempty"`
	EmailNotifications *bool  `json:"email_notifications,omitempty"`
}

// UserPatch is the body of a patch: the non-nil fields are changed. Nil
// ones are left out, never sent as null (which the service refuses).
type UserPatch struct {
	Email              *string `json:"email,omitempty"`
	DisplayName        *string `json:"display_name,omitempty"`
	Locale             *string `json:"locale,omitempty"`
	EmailNotifications *bool   `json:"email_notifications,omitempty"`
}

// ResolvedUsers is the answer of a resolve: the users found and the IDs
// that are not.
type ResolvedUsers struct {
	Users   []User   `json:"users"`
	Missing []string `json:"missing"`
}

// UserClient calls the User Service's internal API.
type UserClient struct {
	BaseURL string // http://host:port
	Token   string // USERSERVICE_INTERNAL_API_TOKEN, when the service has one
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *UserClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return Do(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "userservice", Body: body})
}

func (c *UserClient) doJSON(ctx context.Context, method, path string, body, out any, want ...int) error {
	_, err := DoJSON(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "userservice", Body: body}, out, want...)
	return err
}

func userPath(id string) string { return "/api/v1/internal/users/" + url.PathEscape(id) }

// Create creates u (201). An invalid field is an *APIError with status 400,
// a taken address or ID one with 409 (email_taken, user_id_taken).
func (c *UserClient) Create(ctx context.Context, u NewUser) (User, error) {
	var got User
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/internal/users", u, &got, http.StatusCreated)
	return got, err
}

// Get returns user id; an unknown one is an *APIError with status 404.
func (c *UserClient) Get(ctx context.Context, id string) (User, error) {
	var got User
	err := c.doJSON(ctx, http.MethodGet, userPath(id), nil, &got)
	return got, err
}

// Exists reports whether user id exists; an unknown ID is not an error.
func (c *UserClient) Exists(ctx context.Context, id string) (bool, error) {
	var body struct {
		Exists bool `json:"exists"`
	}
	err := c.doJSON(ctx, http.MethodGet, userPath(id)+"/exists", nil, &body)
	return body.Exists, err
}

// Patch changes the non-nil fields of p and returns the user as it is now.
func (c *UserClient) Patch(ctx context.Context, id string, p UserPatch) (User, error) {
	var got User
	err := c.doJSON(ctx, http.MethodPatch, userPath(id), p, &got)
	return got, err
}

// Delete deletes user id (204); an unknown one is an *APIError with status
// 404.
func (c *UserClient) Delete(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, userPath(id), nil, nil, http.StatusNoContent)
}

// Resolve looks up ids (at most 500) at once.
func (c *UserClient) Resolve(ctx context.Context, ids []string) (ResolvedUsers, error) {
	var got ResolvedUsers
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/internal/users/resolve", map[string][]string{"user_ids": ids}, &got)
	return got, err
}

// UserClient returns a client of the pipeline's User Service.
func (p *Pipeline) UserClient() *UserClient {
	return &UserClient{BaseURL: p.UserURL, Token: p.Tokens.User}
}
