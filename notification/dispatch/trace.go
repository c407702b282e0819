package dispatch

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/platform/streams"
)

const tracerName = "galaxy/notification/dispatch"

// traces are the spans of one hand-off attempt: one dispatch span per
// intent that was recorded with a trace context (its intent's consume span,
// with the producer's tracestate and baggage), so the User Service call and the mail
// commands of a route join the trace of its intent even when the hand-off
// runs later, from PostgreSQL (a retry). An intent recorded without a
// trace context gets no span: its mail commands carry no trace field, as
// the contract has them when the intent had no traceparent.
type traces struct {
	// base is the context of the whole attempt (the store transaction's).
	base     context.Context
	byIntent map[string]intentSpan
	// order keeps the spans in the routes' order, for links and ending.
	order []string
}

type intentSpan struct {
	ctx  context.Context
	span trace.Span
}

func startTraces(ctx context.Context, routes []store.PendingRoute, mailStream string) *traces {
	t := &traces{base: ctx, byIntent: map[string]intentSpan{}}
	tracer := otel.Tracer(tracerName)
	for _, r := range routes {
		if _, ok := t.byIntent[r.IntentID]; ok || r.TraceContext == "" {
			continue
		}
		parent := streams.DecodeTrace(ctx, r.TraceContext)
		if !trace.SpanContextFromContext(parent).IsValid() {
			continue // a stored value the propagator cannot read
		}
		sctx, span := tracer.Start(parent, "dispatch "+r.NotificationType,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "redis"),
				attribute.String("messaging.destination.name", mailStream),
				attribute.String("galaxy.notification.intent_entry_id", r.IntentID),
				attribute.String("galaxy.notification.type", r.NotificationType),
			))
		t.byIntent[r.IntentID] = intentSpan{sctx, span}
		t.order = append(t.order, r.IntentID)
	}
	return t
}

// of is the context of intentID's dispatch span, or the attempt's when the
// intent has none.
func (t *traces) of(intentID string) context.Context {
	if s, ok := t.byIntent[intentID]; ok {
		return s.ctx
	}
	return t.base
}

// resolveContext is the context of the one User Service call of the
// attempt: the dispatch span of its intent when the user routes are all one
// intent's (the usual case), else a span of its own linked to each
// intent's dispatch span, as one call serves them all.
func (t *traces) resolveContext(routes []store.PendingRoute) context.Context {
	intent, several := "", false
	for _, r := range routes {
		if r.UserID == "" {
			continue
		}
		if intent != "" && r.IntentID != intent {
			several = true
			break
		}
		intent = r.IntentID
	}
	if !several {
		return t.of(intent)
	}
	var links []trace.Link
	for _, id := range t.order {
		links = append(links, trace.Link{SpanContext: t.byIntent[id].span.SpanContext()})
	}
	if len(links) == 0 {
		return t.base
	}
	ctx, span := otel.Tracer(tracerName).Start(t.base, "resolve users", trace.WithLinks(links...))
	// Ended at once: the HTTP client's span, its child, times the call.
	defer span.End()
	return ctx
}

// end records each route's outcome on its intent's span and ends the
// spans: a failed or dead route is an error of the span (its last error as
// the exception), a skipped one an event with its reason.
func (t *traces) end(updates []store.RouteUpdate) {
	for _, u := range updates {
		s, ok := t.byIntent[u.IntentID]
		if !ok {
			continue
		}
		route := attribute.String("galaxy.notification.route_id", u.RouteID)
		switch {
		case u.LastError != "":
			s.span.RecordError(errors.New(u.LastError), trace.WithAttributes(route, attribute.String("galaxy.notification.route_status", u.Status)))
			s.span.SetStatus(codes.Error, u.RouteID+": "+u.LastError)
		case u.Status == routing.RouteSkipped:
			s.span.AddEvent("route skipped", trace.WithAttributes(route, attribute.String("galaxy.notification.reason", u.Reason)))
		case u.Status == routing.RouteRouted:
			s.span.AddEvent("route handed off", trace.WithAttributes(route, attribute.String("galaxy.notification.mail_entry_id", u.MailEntryID)))
		}
	}
	for _, id := range t.order {
		t.byIntent[id].span.End()
	}
}
