package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxCheckedBody bounds an answer read to be checked; the services' largest
// is a page of 500 items, far below it.
const maxCheckedBody = 64 << 20

// Transport checks every answer it carries against Service's document
// (Validate) before handing it on, so a client built on an *http.Client
// with this transport — the harness's, each of the services' typed
// clients — gets no answer the document does not allow. An answer that
// does not match is the request's error, naming the route, the status and
// the violation. A path the document does not declare (ErrNoRoute) is
// passed on unchecked.
type Transport struct {
	Service string
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper
}

// Client returns an *http.Client whose answers are checked against
// service's document.
func Client(service string) *http.Client {
	return &http.Client{Transport: &Transport{Service: service}}
}

// RoundTrip sends req and checks the answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckedBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > maxCheckedBody {
		return nil, fmt.Errorf("openapi: %s: %s %s → %d: an answer larger than %d bytes is not checked",
			t.Service, req.Method, req.URL.Path, resp.StatusCode, maxCheckedBody)
	}
	if err := Validate(t.Service, req, resp.StatusCode, resp.Header, body); err != nil && !errors.Is(err, ErrNoRoute) {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
