// Package internalapi is galaxyctl's client of the services' internal HTTP
// APIs (docs/contracts.md §5): Mail's deliveries and Notification's dead
// routes. Both speak the platform's conventions — JSON bodies, the optional
// bearer token, errors as {"error":{"code","message"}} — which Client
// implements once.
package internalapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxBody bounds an answer read into memory: the largest is a page of 500
// deliveries.
const maxBody = 64 << 20

// Client calls one service's internal API.
type Client struct {
	// Service names the service in errors ("mail").
	Service string
	BaseURL string // http://host:port
	Token   string // <P>_INTERNAL_API_TOKEN; empty sends none
	HTTP    *http.Client
}

// Error is an answer with a status the caller did not expect, with the
// contract's error code and message when the body had them.
type Error struct {
	Service string
	Method  string
	Path    string
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s %s %s: %d %s: %s", e.Service, e.Method, e.Path, e.Status, e.Code, msg)
	}
	return fmt.Sprintf("%s %s %s: %d: %s", e.Service, e.Method, e.Path, e.Status, msg)
}

// StatusOf is err's HTTP status when it is an *Error, else 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// do sends one request and decodes a JSON answer with one of want statuses
// into out (nil: the body is dropped). It returns the status.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, out any, want ...int) (int, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, fmt.Errorf("%s %s %s: %w", c.Service, method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s %s: %w", c.Service, method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s %s: read the answer: %w", c.Service, method, path, err)
	}
	if !slices.Contains(want, resp.StatusCode) {
		e := &Error{Service: c.Service, Method: method, Path: path, Status: resp.StatusCode}
		var shape struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &shape) == nil {
			e.Code, e.Message = shape.Error.Code, shape.Error.Message
		} else {
			e.Message = string(bytes.TrimSpace(body))
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s %s: decode the answer: %w", c.Service, method, path, err)
		}
	}
	return resp.StatusCode, nil
}
