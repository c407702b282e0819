// Package httpapi is the internal HTTP server every service runs: the
// service's own routes plus /healthz, /readyz and /metrics, JSON errors in the
// contract's shape, an optional bearer token, and graceful shutdown.
package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Check reports whether one dependency answers. It must honour ctx.
type Check func(ctx context.Context) error

// Server is the internal HTTP API of a service.
type Server struct {
	addr     string
	logger   *slog.Logger
	mux      *http.ServeMux
	token    string
	mu       sync.Mutex
	checks   []namedCheck
	listener net.Listener
	// requests and durations are labelled by route, method and code;
	// each route's handler is wrapped in promhttp's instrumentation with
	// its route curried in (instrumented).
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
}

type namedCheck struct {
	name  string
	check Check
}

// CheckTimeout bounds each readiness check so one hung dependency cannot hang
// the probe.
const CheckTimeout = 2 * time.Second

// New returns a server for addr. A non-empty token protects every route but
// the probes and /metrics. reg receives the request metrics and is served on
// /metrics; pass prometheus.DefaultRegisterer's registry in services.
func New(addr string, logger *slog.Logger, token string, reg *prometheus.Registry) *Server {
	s := &Server{addr: addr, logger: logger, mux: http.NewServeMux(), token: token}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "Internal API requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	s.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Time to answer an internal API request, by route pattern, method and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method", "code"})
	reg.MustRegister(s.requests, s.durations)
	s.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.handle("GET /readyz", http.HandlerFunc(s.ready))
	s.handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return s
}

// unmatchedRoute is the route label of requests no pattern matched, so a
// scan of random paths adds one series, not one per path.
const unmatchedRoute = "unmatched"

// handle registers h for pattern, counted and timed under the pattern's path.
func (s *Server) handle(pattern string, h http.Handler) {
	_, path, _ := strings.Cut(pattern, " ")
	s.mux.Handle(pattern, s.instrumented(path, h))
}

// instrumented wraps h in promhttp's counter and duration instrumentation,
// its route label fixed to route; promhttp fills method and code.
func (s *Server) instrumented(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(s.durations.MustCurryWith(labels), h))
}

// AddCheck registers a readiness check under name (e.g. "redis").
func (s *Server) AddCheck(name string, check Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, namedCheck{name, check})
}

// Handle registers an API route with a Go 1.22 pattern ("GET /api/v1/x/{id}").
func (s *Server) Handle(pattern string, h http.HandlerFunc) {
	s.handle(pattern, s.protect(h))
}

func (s *Server) protect(h http.HandlerFunc) http.Handler {
	if s.token == "" {
		return h
	}
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		h(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := append([]namedCheck(nil), s.checks...)
	s.mu.Unlock()
	type failure struct {
		Check string `json:"check"`
		Error string `json:"error"`
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []failure
	)
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
			defer cancel()
			if err := c.check(ctx); err != nil {
				mu.Lock()
				failures = append(failures, failure{c.name, err.Error()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": failures})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Listen binds the address now, so that a port conflict stops the process
// before any work starts. Run calls it when it was not called.
func (s *Server) Listen() error {
	if s.listener != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.listener = l
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string {
	if s.listener == nil {
		return s.addr
	}
	return s.listener.Addr().String()
}

// Run serves until ctx ends, then drains in-flight requests within the
// shutdown budget carried by lifecycle (ctx's cancellation starts it).
func (s *Server) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           traced(s.logServerErrors(http.HandlerFunc(s.route))),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.listener) }()
	s.logger.Info("internal http api listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// route serves r, answering unknown paths and wrong methods with the
// contract's JSON error instead of ServeMux's plain text.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.instrumented(unmatchedRoute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.unmatched(w, r, h)
	})).ServeHTTP(w, r)
}

// unmatched answers a request no pattern matched, h being what ServeMux
// would have served.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, r)
	switch probe.Code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.Header().Get("Allow"))
		WriteError(w, probe.Code, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
	case http.StatusNotFound:
		WriteError(w, probe.Code, "not_found", "no route for "+r.URL.Path)
	default: // redirects for cleaned paths and the like
		s.mux.ServeHTTP(w, r)
	}
}

// traced wraps h in otelhttp's server instrumentation: a span per API
// request, joined to the caller's trace through the configured propagator
// and named by its route pattern ("POST /api/v1/internal/users/resolve"),
// or by its method alone when no pattern matched, so span names stay few.
// The probes and /metrics are left out: they are polled, and would bury the
// spans of real work. It wraps logServerErrors and route (not the other way
// round) so that the request the mux stamps with its pattern is the one
// otelhttp names the span from.
func traced(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http.server",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}))
}

// logServerErrors logs every 5xx answer but the readiness probe's, whose
// 503 is its normal way of saying a dependency is down.
func (s *Server) logServerErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = unmatchedRoute
		}
		if rec.code >= 500 && !strings.HasSuffix(route, "/readyz") {
			s.logger.WarnContext(r.Context(), "internal api error", "route", route, "code", rec.code)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
