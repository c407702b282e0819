// Package userclient is the client of the User Service's internal API
// (user/api/openapi.yaml, docs/user.md): users created, read, changed,
// deleted and resolved in batches. It declares the API's types itself and
// uses none of the service's code. Its callers are Notification
// (notification/users, the resolve call) and the test harness.
package userclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"galaxy/platform/apiclient"
)

// User is the User Service's user as its API shows it. It is decoded
// leniently: the contract may add fields.
type User struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Locale      string `json:"locale"`
	// EmailNotifications is the contract's default, true, when an answer
	// leaves it out.
	EmailNotifications bool  `json:"email_notifications"`
	CreatedAtMS        int64 `json:"created_at_ms"`
	UpdatedAtMS        int64 `json:"updated_at_ms"`
}

// UnmarshalJSON decodes u with the contract's default for a field left out.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User
	p := plain{EmailNotifications: true}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*u = User(p)
	return nil
}

// OptedOut reports whether the user turned e-mail notifications off.
func (u User) OptedOut() bool { return !u.EmailNotifications }

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

// Patch is the body of a patch: the non-nil fields are changed. Nil ones
// are left out, never sent as null (which the service refuses).
type Patch struct {
	Email              *string `json:"email,omitempty"`
	DisplayName        *string `json:"display_name,omitempty"`
	Locale             *string `json:"locale,omitempty"`
	EmailNotifications *bool   `json:"email_notifications,omitempty"`
}

// Resolved is the answer of a resolve: the users found and the IDs that
// are not.
type Resolved struct {
	Users   []User   `json:"users"`
	Missing []string `json:"missing"`
}

// MaxResolve is the most IDs one resolve call takes.
const MaxResolve = 500

const usersPath = "/api/v1/internal/users"

// Client calls the User Service's internal API. Its apiclient.Client's Do
// and DoJSON are there for requests the typed methods do not make.
type Client struct{ apiclient.Client }

// New returns a client of the User Service API at baseURL (http://host:port)
// that sends token (USERSERVICE_INTERNAL_API_TOKEN; empty sends none)
// through hc (nil: http.DefaultClient).
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{apiclient.Client{Service: "userservice", BaseURL: baseURL, Token: token, HTTP: hc}}
}

func userPath(id string) string { return usersPath + "/" + url.PathEscape(id) }

// Create creates u (201). An invalid field is an *apiclient.Error with
// status 400, a taken address or ID one with 409 (email_taken,
// user_id_taken).
func (c *Client) Create(ctx context.Context, u NewUser) (User, error) {
	var got User
	_, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodPost, Path: usersPath, Body: u}, &got, http.StatusCreated)
	return got, err
}

// Get returns user id; an unknown one is an *apiclient.Error with status 404.
func (c *Client) Get(ctx context.Context, id string) (User, error) {
	var got User
	_, err := c.DoJSON(ctx, apiclient.Request{Path: userPath(id)}, &got)
	return got, err
}

// Exists reports whether user id exists; an unknown ID is not an error.
func (c *Client) Exists(ctx context.Context, id string) (bool, error) {
	var body struct {
		Exists bool `json:"exists"`
	}
	_, err := c.DoJSON(ctx, apiclient.Request{Path: userPath(id) + "/exists"}, &body)
	return body.Exists, err
}

// Patch changes the non-nil fields of p and returns the user as it is now.
func (c *Client) Patch(ctx context.Context, id string, p Patch) (User, error) {
	var got User
	_, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodPatch, Path: userPath(id), Body: p}, &got)
	return got, err
}

// Delete deletes user id (204); an unknown one is an *apiclient.Error with
// status 404.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodDelete, Path: userPath(id)}, nil, http.StatusNoContent)
	return err
}

// Resolve looks up ids (at most MaxResolve) in one call.
func (c *Client) Resolve(ctx context.Context, ids []string) (Resolved, error) {
	var got Resolved
	_, err := c.DoJSON(ctx, apiclient.Request{
		Method: http.MethodPost, Path: usersPath + "/resolve", Body: map[string][]string{"user_ids": ids},
	}, &got)
	return got, err
}

// Healthy reports whether the service's /healthz answers 200: the
// readiness check of a service that depends on it.
func (c *Client) Healthy(ctx context.Context) error {
	_, err := c.DoJSON(ctx, apiclient.Request{Path: "/healthz"}, nil)
	return err
}
