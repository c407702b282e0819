// Package users resolves user IDs to e-mail recipients through the User
// Service's batch endpoint (POST /api/v1/internal/users/resolve), called
// with user/userclient.
package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"galaxy/platform/apiclient"
	"galaxy/platform/streams"
	"galaxy/user/userclient"
)

// MaxBatch is the User Service's limit of IDs per resolve call.
const MaxBatch = userclient.MaxResolve

// maxResponseBytes bounds one resolve response (500 users with generous
// fields); a larger answer is an error, not an allocation.
const maxResponseBytes = 8 << 20

// User is what Notification needs of a user; OptedOut says whether it
// turned e-mail notifications off.
type User = userclient.User

// Client calls the User Service.
type Client struct {
	api *userclient.Client
}

// New returns a client for baseURL (e.g. http://127.0.0.1:8081); each call is
// bounded by timeout.
func New(baseURL string, timeout time.Duration) *Client {
	// otelhttp puts each call in a client span and hands the trace to the
	// User Service through the configured propagator; the readiness
	// check's /healthz is left untraced, as the server leaves its probes.
	hc := &http.Client{Transport: otelhttp.NewTransport(&http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	},
		otelhttp.WithFilter(func(r *http.Request) bool { return !strings.HasSuffix(r.URL.Path, "/healthz") }),
		// The client calls fixed paths (no IDs in them): they name the
		// spans as the server's route patterns do.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + r.URL.Path
		}))}
	api := userclient.New(baseURL, "", hc)
	api.Timeout = timeout
	api.MaxBody = maxResponseBytes
	return &Client{api: api}
}

// WithToken makes the client send token as a bearer token, for a User
// Service whose USERSERVICE_INTERNAL_API_TOKEN is set. Empty sends none.
func (c *Client) WithToken(token string) *Client {
	c.api.Token = token
	return c
}

// Resolve looks up ids (any number; batched by MaxBatch) and returns the users
// found by ID. IDs absent from the result are unknown to the User Service.
// Any failure (transport, timeout, non-200, bad body) is an error for the
// whole call: the caller retries later. A failure that says the service is
// unavailable rather than that it refused this call — unreachable, timed
// out, cut off mid-answer, 5xx or 429 — is marked with streams.Unavailable,
// so the caller can wait out an outage instead of spending the routes'
// attempts on it.
func (c *Client) Resolve(ctx context.Context, ids []string) (map[string]User, error) {
	out := make(map[string]User, len(ids))
	for start := 0; start < len(ids); start += MaxBatch {
		end := min(start+MaxBatch, len(ids))
		if err := c.resolveBatch(ctx, ids[start:end], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *Client) resolveBatch(ctx context.Context, ids []string, out map[string]User) error {
	res, err := c.api.Resolve(ctx, ids)
	if err != nil {
		err = fmt.Errorf("resolve %d users: %w", len(ids), err)
		if unavailable(err) {
			return streams.Unavailable(err)
		}
		return err
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	for _, u := range res.Users {
		if asked[u.UserID] {
			out[u.UserID] = u
		}
	}
	return nil
}

// unavailable reports whether err says the service cannot serve now — no
// complete answer, or one that says it is overloaded, failing, or behind a
// proxy that cannot reach it — as opposed to refusing the request itself
// (4xx other than 429) or answering what cannot be read.
func unavailable(err error) bool {
	if errors.Is(err, apiclient.ErrNoAnswer) {
		return true
	}
	code := apiclient.StatusOf(err)
	return code >= 500 || code == http.StatusTooManyRequests
}

// Check is a readiness check: the User Service's /healthz answers 200.
func (c *Client) Check(ctx context.Context) error {
	if err := c.api.Healthy(ctx); err != nil {
		return fmt.Errorf("user service: %w", err)
	}
	return nil
}
