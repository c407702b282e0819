// Package logging builds the JSON slog logger every service writes to stderr.
// A line logged with a context that holds a span (the …Context methods)
// carries that span's trace_id and span_id, so a trace and its log lines
// find each other.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/trace"
)

// New returns a JSON logger at level that tags every line with the service.
func New(service string, level slog.Level) *slog.Logger {
	return NewTo(os.Stderr, service, level)
}

// NewTo is New writing to w.
func NewTo(w io.Writer, service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(WithTrace(h)).With("service", service)
}

// WithTrace wraps h so that each record whose context holds a valid span
// context gets trace_id and span_id (lower-case hex, as in traceparent). The
// span need not be recording: a service that exports no traces still logs
// the IDs of the trace it takes part in.
func WithTrace(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ next slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// A copy: the caller's record may share its attribute storage.
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.next.WithAttrs(attrs)}
}

// WithGroup nests later attributes, the trace IDs too: no service logs in
// groups today, and a handler cannot add top-level attributes once its
// inner handler has opened a group.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.next.WithGroup(name)}
}
