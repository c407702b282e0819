package store

import (
	"context"
	"encoding/json"

	"galaxy/platform/streams"
)

// TraceContextOf is ctx's trace as the configured propagator's fields, in
// JSON: what a delivery stores so that its attempts, made later by the
// sender loop, continue the trace of whoever created or resent it. "" when
// ctx carries no trace.
func TraceContextOf(ctx context.Context) string {
	fields := map[string]string{}
	streams.InjectTrace(ctx, fields)
	if len(fields) == 0 {
		return ""
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return "" // a map of strings always encodes
	}
	return string(raw)
}

// Traced returns ctx continuing the delivery's stored trace, or ctx as it
// is when the delivery has none (or it does not decode: a trace is never a
// reason not to send).
func (d Delivery) Traced(ctx context.Context) context.Context {
	if d.TraceContext == "" {
		return ctx
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(d.TraceContext), &fields); err != nil {
		return ctx
	}
	return streams.ExtractTrace(ctx, fields)
}
