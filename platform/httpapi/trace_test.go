package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"galaxy/platform/httpapi"
)

// recordSpans installs a recording tracer provider and the W3C propagator
// for the test, restoring the previous ones after it.
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return rec
}

func TestRequestSpansAreNamedByRouteAndJoinTheCallersTrace(t *testing.T) {
	rec := recordSpans(t)
	var handlerSpan trace.SpanContext
	base := start(t, "", func(s *httpapi.Server) {
		s.Handle("GET /api/v1/internal/things/{id}", func(w http.ResponseWriter, r *http.Request) {
			handlerSpan = trace.SpanContextFromContext(r.Context())
			httpapi.WriteJSON(w, 200, map[string]string{"ok": "yes"})
		})
	})
	get(t, base+"/healthz", "")
	get(t, base+"/metrics", "")
	get(t, base+"/nowhere", "")

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	req, _ := http.NewRequestWithContext(trace.ContextWithSpanContext(context.Background(), caller), http.MethodGet, base+"/api/v1/internal/things/7", nil)
	propagation.TraceContext{}.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()

	spans := rec.Ended()
	if len(spans) != 2 {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("got %d spans %v, want 2 (the probes and /metrics are not traced)", len(spans), names)
	}
	if got := spans[0].Name(); got != "GET" {
		t.Errorf("unmatched request's span = %q, want GET", got)
	}
	s := spans[1]
	if s.Name() != "GET /api/v1/internal/things/{id}" {
		t.Errorf("span name = %q, want the route pattern", s.Name())
	}
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kind = %v, want server", s.SpanKind())
	}
	if s.Parent().SpanID() != sid || s.SpanContext().TraceID() != tid {
		t.Errorf("span %s parent %s, want trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID(), tid, sid)
	}
	if handlerSpan.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("the handler's context holds span %s, want the request's %s", handlerSpan.SpanID(), s.SpanContext().SpanID())
	}
}
