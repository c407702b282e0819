package dispatch

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"galaxy/notification/routing"
	"galaxy/notification/store"
)

const (
	// tracedContext is an intent's stored trace (streams.EncodeTrace) with
	// a producer's tracestate and baggage.
	tracedContext = `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"vendor=abc","baggage":"tenant=t1"}`
	tracedID      = "4bf92f3577b34da6a3ce929d0e0e4736"
)

func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })
	return rec
}

// One dispatch span per intent with a stored trace context, the child of
// it; none for an intent without one (its commands carry no trace field).
func TestDispatchSpansFollowTheStoredTraceContext(t *testing.T) {
	rec := recordSpans(t)
	routes := []store.PendingRoute{
		{IntentID: "1-0", RouteID: "email:user:u1", UserID: "u1", NotificationType: "lobby.game_starting", TraceContext: tracedContext},
		{IntentID: "1-0", RouteID: "email:user:u2", UserID: "u2", NotificationType: "lobby.game_starting", TraceContext: tracedContext},
		{IntentID: "2-0", RouteID: "email:email:a@example.com", NotificationType: "runtime.image_pull_failed"},
	}
	tr := startTraces(context.Background(), routes, "mail:delivery_commands")
	if sc := trace.SpanContextFromContext(tr.resolveContext(routes)); sc.TraceID().String() != tracedID {
		t.Errorf("the resolve call of one intent's users runs in trace %s, want the intent's %s", sc.TraceID(), tracedID)
	}
	// The producer's tracestate and baggage, stored with the intent, ride
	// on to the mail commands.
	traced := map[string]string{}
	otel.GetTextMapPropagator().Inject(tr.of("1-0"), propagation.MapCarrier(traced))
	if traced["tracestate"] != "vendor=abc" || traced["baggage"] != "tenant=t1" {
		t.Errorf("a traced intent's commands get trace fields %v, want tracestate vendor=abc and baggage tenant=t1", traced)
	}
	fields := map[string]string{}
	otel.GetTextMapPropagator().Inject(tr.of("2-0"), propagation.MapCarrier(fields))
	if len(fields) != 0 {
		t.Errorf("an intent without a trace context gets trace fields %v", fields)
	}
	tr.end([]store.RouteUpdate{
		{IntentID: "1-0", RouteID: "email:user:u1", Status: routing.RoutePending, LastError: "user service: 503"},
		{IntentID: "1-0", RouteID: "email:user:u2", Status: routing.RouteSkipped, Reason: routing.ReasonEmailOptedOut},
		{IntentID: "2-0", RouteID: "email:email:a@example.com", Status: routing.RouteRouted},
	})

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want the one dispatch span of the traced intent", len(spans))
	}
	s := spans[0]
	if s.Name() != "dispatch lobby.game_starting" || s.SpanKind() != trace.SpanKindProducer {
		t.Errorf("span %q kind %v, want dispatch lobby.game_starting, producer", s.Name(), s.SpanKind())
	}
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || s.SpanContext().TraceID().String() != tracedID {
		t.Errorf("span parent %s trace %s, want the stored traceparent's", s.Parent().SpanID(), s.SpanContext().TraceID())
	}
	if s.Status().Code != codes.Error || s.Status().Description != "email:user:u1: user service: 503" {
		t.Errorf("status %+v, want Error naming the failed route", s.Status())
	}
	var events []string
	for _, e := range s.Events() {
		events = append(events, e.Name)
	}
	if len(events) != 2 || events[0] != "exception" || events[1] != "route skipped" {
		t.Errorf("events %v, want [exception route skipped]", events)
	}
}

// One resolve call serving several traced intents gets a span of its own,
// linked to each intent's dispatch span.
func TestSharedResolveCallIsLinkedToEachIntent(t *testing.T) {
	rec := recordSpans(t)
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	routes := []store.PendingRoute{
		{IntentID: "1-0", UserID: "u1", NotificationType: "lobby.game_starting", TraceContext: tracedContext},
		{IntentID: "2-0", UserID: "u2", NotificationType: "lobby.game_starting", TraceContext: `{"traceparent":"` + other + `"}`},
	}
	tr := startTraces(context.Background(), routes, "mail:delivery_commands")
	sc := trace.SpanContextFromContext(tr.resolveContext(routes))
	tr.end(nil)
	var resolve sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "resolve users" {
			resolve = s
		}
	}
	if resolve == nil || resolve.SpanContext().SpanID() != sc.SpanID() {
		t.Fatalf("no resolve users span for the shared call")
	}
	if len(resolve.Links()) != 2 {
		t.Fatalf("links %v, want one per intent", resolve.Links())
	}
	if resolve.Links()[0].SpanContext.TraceID().String() != tracedID || resolve.Links()[1].SpanContext.TraceID().String() != "11111111111111111111111111111111" {
		t.Errorf("links to traces %s, %s", resolve.Links()[0].SpanContext.TraceID(), resolve.Links()[1].SpanContext.TraceID())
	}
}
