package users_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"galaxy/notification/users"
)

// A resolve call is a client span of the caller's trace, and the User
// Service receives that span as the parent of its own (traceparent); the
// readiness check is not traced.
func TestResolveCarriesTheCallersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/internal/users/resolve" {
			got <- r.Header.Get("traceparent")
		}
		_, _ = w.Write([]byte(`{"users":[],"missing":["u1"]}`))
	}))
	defer srv.Close()
	c := users.New(srv.URL, 2*time.Second)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "dispatch")
	if _, err := c.Resolve(ctx, []string{"u1"}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			if client != nil {
				t.Fatalf("more than one client span: the readiness check was traced too")
			}
			client = s
		}
	}
	if client == nil {
		t.Fatal("no client span for the resolve call")
	}
	if client.Name() != "POST /api/v1/internal/users/resolve" {
		t.Errorf("client span name = %q", client.Name())
	}
	if client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("client span's parent = %s, want the caller's span %s", client.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	want := "00-" + client.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
	if tp := <-got; tp != want {
		t.Errorf("traceparent sent = %q, want %q (the client span)", tp, want)
	}
}
