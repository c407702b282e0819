// Package users resolves user IDs to e-mail recipients through the User
// Service's batch endpoint (POST /api/v1/internal/users/resolve).
package users

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"galaxy/platform/streams"
)

// MaxBatch is the User Service's limit of IDs per resolve call.
const MaxBatch = 500

// maxResponseBytes bounds one resolve response (500 users with generous
// fields); a larger answer is an error, not an allocation.
const maxResponseBytes = 8 << 20

// User is what Notification needs of a user.
type User struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Locale      string `json:"locale"`
	// EmailNotifications is nil when the service leaves it out; the
	// contract's default is true.
	EmailNotifications *bool `json:"email_notifications"`
}

// OptedOut reports whether the user turned e-mail notifications off.
func (u User) OptedOut() bool {
	return u.EmailNotifications != nil && !*u.EmailNotifications
}

// Client calls the User Service.
type Client struct {
	baseURL string
	timeout time.Duration
	token   string
	http    *http.Client
}

// New returns a client for baseURL (e.g. http://127.0.0.1:8081); each call is
// bounded by timeout.
func New(baseURL string, timeout time.Duration) *Client {
	return &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		timeout: timeout,
		// otelhttp puts each call in a client span and hands the trace
		// to the User Service through the configured propagator; the
		// readiness check's /healthz is left untraced, as the server
		// leaves its probes.
		http: &http.Client{Transport: otelhttp.NewTransport(&http.Transport{
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
			otelhttp.WithFilter(func(r *http.Request) bool { return !strings.HasSuffix(r.URL.Path, "/healthz") }),
			// The client calls fixed paths (no IDs in them): they name
			// the spans as the server's route patterns do.
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return r.Method + " " + r.URL.Path
			}))},
	}
}

// WithToken makes the client send token as a bearer token, for a User
// Service whose USERSERVICE_INTERNAL_API_TOKEN is set. Empty sends none.
func (c *Client) WithToken(token string) *Client {
	c.token = token
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
	body, err := json.Marshal(map[string][]string{"user_ids": ids})
	if err != nil {
		return fmt.Errorf("resolve users: encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	url := c.baseURL + "/api/v1/internal/users/resolve"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("resolve users: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return streams.Unavailable(fmt.Errorf("resolve %d users: %w", len(ids), err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return streams.Unavailable(fmt.Errorf("resolve %d users: read response: %w", len(ids), err))
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("resolve %d users: POST %s: status %d: %s", len(ids), url, resp.StatusCode, snippet(raw))
		if unavailableStatus(resp.StatusCode) {
			return streams.Unavailable(err)
		}
		return err
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("resolve %d users: response larger than %d bytes", len(ids), maxResponseBytes)
	}
	// Lenient decoding: the user object may grow fields.
	var res struct {
		Users   []User   `json:"users"`
		Missing []string `json:"missing"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("resolve %d users: decode response: %w", len(ids), err)
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

// unavailableStatus reports whether an answer says the service cannot serve
// now (overloaded, failing, behind a proxy that cannot reach it), as opposed
// to refusing the request itself (4xx other than 429).
func unavailableStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests
}

// Check is a readiness check: the User Service's /healthz answers 200.
func (c *Client) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("user service: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("user service: GET /healthz: status %d", resp.StatusCode)
	}
	return nil
}

func snippet(b []byte) string {
	const limit = 200
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
