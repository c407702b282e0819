// Package openapi checks answers of the four internal HTTP APIs against
// their OpenAPI 3.1 documents (user/api, mail/api, notification/api and
// rtmanager/api, each openapi.yaml, embedded as api.OpenAPI), so that the
// documents, the prose contract and the code cannot drift apart unseen.
//
// The harness's clients get their answers through an *http.Client whose
// Transport checks each one (Client("mail")); a test that has an answer in
// hand makes one call:
//
//	err := openapi.Validate("mail", req, resp.StatusCode, resp.Header, body)
//
// or, when it does not know which service answered, ValidateByPath. The
// documents are loaded and checked once, on first use.
package openapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	mailapi "galaxy/mail/api"
	notificationapi "galaxy/notification/api"
	rtmanagerapi "galaxy/rtmanager/api"
	userapi "galaxy/user/api"
)

// Documents are the four documents by service name, the harness's names
// (harness.ServiceDef.Name).
var Documents = map[string][]byte{
	"userservice":  userapi.OpenAPI,
	"mail":         mailapi.OpenAPI,
	"notification": notificationapi.OpenAPI,
	"rtmanager":    rtmanagerapi.OpenAPI,
}

// ErrNoRoute is in the chain of a Validate error for a request whose path
// no document declares: a route the service does not have (its answer is
// the 404 of platform/httpapi), or another server altogether (a game
// server, Mailpit). A caller that sends such requests on purpose can skip
// them with errors.Is.
var ErrNoRoute = errors.New("no route of the document matches")

// API is one loaded and checked document.
type API struct {
	Service string
	Doc     *openapi3.T
	router  routers.Router
}

// Load parses and checks one document; name is the service, for messages.
func Load(name string, data []byte) (*API, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi: %s: loading the document: %w", name, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi: %s: the document is OpenAPI %s, want 3.1", name, doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi: %s: the document is invalid: %w", name, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %s: routing the document's paths: %w", name, err)
	}
	return &API{Service: name, Doc: doc, router: router}, nil
}

// loadAll loads the four documents once; every caller shares the result.
var loadAll = sync.OnceValues(func() (map[string]*API, error) {
	apis := make(map[string]*API, len(Documents))
	var errs []error
	for name, data := range Documents {
		api, err := Load(name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		apis[name] = api
	}
	return apis, errors.Join(errs...)
})

// APIs returns the four loaded documents by service name, or why one of
// them does not load.
func APIs() (map[string]*API, error) { return loadAll() }

// Validate checks an answer of service ("userservice", "mail",
// "notification", "rtmanager") to req: its status is one the operation
// declares, its Content-Type one declared for that status, its body matches
// the schema (or is empty where no body is declared), and the headers
// declared required are present and valid. The error names the service,
// the method, the path, the status and what does not match.
func Validate(service string, req *http.Request, status int, header http.Header, body []byte) error {
	apis, err := loadAll()
	if err != nil {
		return err
	}
	api, ok := apis[service]
	if !ok {
		return fmt.Errorf("openapi: unknown service %q (want one of %s)", service, strings.Join(serviceNames(), ", "))
	}
	key := answerKey(service, req, status, header, body)
	if valid.seen(key) {
		return nil
	}
	if err := api.Validate(req, status, header, body); err != nil {
		return err
	}
	valid.add(key)
	return nil
}

// valid remembers answers Validate found valid. A check costs a couple of
// milliseconds (kin-openapi compiles the schema on every call), and the
// suite's Eventually and Settled loops receive the same answer over and
// over: an answer seen valid before is valid again.
var valid = &answerCache{keys: map[[sha256.Size]byte]bool{}}

// maxCachedAnswers bounds the cache; when full it starts again.
const maxCachedAnswers = 1 << 14

type answerCache struct {
	mu   sync.Mutex
	keys map[[sha256.Size]byte]bool
}

func (c *answerCache) seen(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

func (c *answerCache) add(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= maxCachedAnswers {
		clear(c.keys)
	}
	c.keys[key] = true
}

// answerKey digests everything the validity of an answer depends on: the
// service, the request's method and path, the status, every header but
// Date (which changes each second and no document constrains), and the
// body.
func answerKey(service string, req *http.Request, status int, header http.Header, body []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00", service, req.Method, req.URL.Path, status)
	for _, k := range slices.Sorted(maps.Keys(header)) {
		if k == "Date" {
			continue
		}
		fmt.Fprintf(h, "%s\x00%s\x00", k, strings.Join(header[k], "\x01"))
	}
	h.Write(body)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// ValidateByPath is Validate for the service whose document declares req's
// path. The API paths of the four documents are disjoint, and /healthz,
// /readyz and /metrics are the same in all four (TestProbesAreTheSame), so
// the answer of any service can be checked without naming it.
func ValidateByPath(req *http.Request, status int, header http.Header, body []byte) error {
	apis, err := loadAll()
	if err != nil {
		return err
	}
	for _, name := range serviceNames() {
		if apis[name].declares(req) {
			return apis[name].Validate(req, status, header, body)
		}
	}
	return fmt.Errorf("openapi: %s %s → %d: %w in any of the four documents", req.Method, req.URL.Path, status, ErrNoRoute)
}

func serviceNames() []string {
	names := make([]string, 0, len(Documents))
	for name := range Documents {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// declares reports whether the document has req's path, whatever the method.
func (a *API) declares(req *http.Request) bool {
	_, _, err := a.router.FindRoute(req)
	return err == nil || errors.Is(err, routers.ErrMethodNotAllowed)
}

// Validate checks one answer of this API; see the package function.
func (a *API) Validate(req *http.Request, status int, header http.Header, body []byte) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("openapi: %s: %s %s → %d: "+format, append([]any{a.Service, req.Method, req.URL.Path, status}, args...)...)
	}
	route, params, err := a.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		// platform/httpapi answers a known path with another method 405
		// and the error shape; OpenAPI has no place to declare that for
		// the methods a path lacks, so it is checked here.
		return a.validateMethodNotAllowed(status, header, body, fail)
	case errors.Is(err, routers.ErrPathNotFound):
		return fail("%w", ErrNoRoute)
	case err != nil:
		return fail("finding the route: %v", err)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
		},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	input.SetBodyBytes(body)
	response := route.Operation.Responses.Status(status)
	if response != nil && response.Value != nil && len(response.Value.Content) == 0 && len(bytes.TrimSpace(body)) > 0 {
		return fail("the document declares no body for this status, the answer has %d bytes: %q", len(body), truncate(body))
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fail("%s", describe(err))
	}
	return nil
}

func (a *API) validateMethodNotAllowed(status int, header http.Header, body []byte, fail func(string, ...any) error) error {
	if status != http.StatusMethodNotAllowed {
		return fail("the document declares no operation for this method, and the answer is not 405")
	}
	if header.Get("Allow") == "" {
		return fail("a 405 without an Allow header")
	}
	if ct, _, _ := mime.ParseMediaType(header.Get("Content-Type")); ct != "application/json" {
		return fail("a 405 with Content-Type %q, want application/json", header.Get("Content-Type"))
	}
	errSchema := a.Doc.Components.Schemas["Error"]
	if errSchema == nil || errSchema.Value == nil {
		return fail("the document has no components.schemas.Error")
	}
	value, err := decodeJSON(body)
	if err != nil {
		return fail("the body is not JSON: %v", err)
	}
	if err := errSchema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fail("response body doesn't match schema Error: %s", describe(err))
	}
	return nil
}

// describe shortens kin-openapi's error: its *openapi3.SchemaError prints
// the whole schema and value, which bury the one line that matters.
func describe(err error) string {
	var respErr *openapi3filter.ResponseError
	if errors.As(err, &respErr) && respErr.Err != nil {
		return respErr.Reason + ": " + describe(respErr.Err)
	}
	var schemaErr *openapi3.SchemaError
	if errors.As(err, &schemaErr) {
		where := "/" + strings.Join(schemaErr.JSONPointer(), "/")
		reason := schemaErr.Reason
		// Several violations at once come as one reason of the JSON Schema
		// 2020-12 validator, a line each after one that names only the
		// schema's placeholder URL: keep them on one line.
		if lines := strings.Split(strings.TrimSpace(reason), "\n"); len(lines) > 1 && strings.HasPrefix(lines[0], "jsonschema validation failed") {
			for i := range lines[1:] {
				lines[i+1] = strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "- ")
			}
			reason = strings.Join(lines[1:], "; ")
		}
		return fmt.Sprintf("at %s: %s", where, reason)
	}
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		parts := make([]string, len(multi))
		for i, e := range multi {
			parts[i] = describe(e)
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

func decodeJSON(body []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func truncate(b []byte) []byte {
	const max = 200
	if len(b) > max {
		return b[:max]
	}
	return b
}
