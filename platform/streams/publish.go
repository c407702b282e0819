package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// The trace fields a stream entry may carry: the W3C formats of the default
// propagator (OTEL_PROPAGATORS=tracecontext,baggage), trace context and
// baggage, set and read through the configured propagator. A consumer takes
// them as the entry's trace, never as its payload (Mail accepts them beside
// a command's fixed fields). Other formats' headers (b3, jaeger, ...) stay
// within a process: a stream's field set is a public contract, and these
// three are the ones it names.
const (
	TraceparentField = "traceparent"
	TracestateField  = "tracestate"
	BaggageField     = "baggage"
)

// TraceFields are the fields InjectTrace may write and ExtractTrace reads.
var TraceFields = []string{TraceparentField, TracestateField, BaggageField}

// IsTraceField reports whether an entry's field is one of TraceFields.
func IsTraceField(name string) bool {
	return slices.Contains(TraceFields, name)
}

// InjectTrace adds to fields the trace context of ctx as the global
// propagator writes it, limited to the stream's trace fields. Fields that
// already carry a traceparent are left as they are: the caller chose the
// entry's trace.
func InjectTrace(ctx context.Context, fields map[string]string) {
	if _, ok := fields[TraceparentField]; ok {
		return
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if carrier.Get(TraceparentField) == "" {
		return
	}
	for _, k := range TraceFields {
		if v := carrier.Get(k); v != "" {
			fields[k] = v
		}
	}
}

// Publish appends values to stream, adding the caller's trace context
// (InjectTrace), and returns the entry ID.
func Publish(ctx context.Context, c redis.Cmdable, stream string, values map[string]string) (string, error) {
	fields := make(map[string]string, len(values)+len(TraceFields))
	for k, v := range values {
		fields[k] = v
	}
	InjectTrace(ctx, fields)
	args := make(map[string]any, len(fields))
	for k, v := range fields {
		args[k] = v
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: args}).Result()
	if err != nil {
		return "", fmt.Errorf("publish to %s: %w", stream, err)
	}
	return id, nil
}

// ExtractTrace returns ctx carrying the remote span context of an entry's
// trace fields, read through the global propagator, if it has them.
func ExtractTrace(ctx context.Context, values map[string]string) context.Context {
	if _, ok := values[TraceparentField]; !ok {
		return ctx
	}
	carrier := propagation.MapCarrier{}
	for _, k := range TraceFields {
		if v, ok := values[k]; ok {
			carrier[k] = v
		}
	}
	return otel.GetTextMapPropagator().Extract(ctx, carrier)
}

// EncodeTrace is ctx's trace as the trace fields InjectTrace writes, in a
// JSON object: what a service stores with a record so that work done later
// from its database (a retry, a sender loop) continues the trace of whoever
// caused it, with its tracestate and baggage. "" when ctx carries no trace.
func EncodeTrace(ctx context.Context) string {
	fields := map[string]string{}
	InjectTrace(ctx, fields)
	if len(fields) == 0 {
		return ""
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return "" // a map of strings always encodes
	}
	return string(raw)
}

// DecodeTrace returns ctx continuing a trace stored by EncodeTrace, or ctx
// as it is when encoded is empty or does not decode: a stored trace is
// never a reason to fail the work it belongs to.
func DecodeTrace(ctx context.Context, encoded string) context.Context {
	if encoded == "" {
		return ctx
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(encoded), &fields); err != nil {
		return ctx
	}
	return ExtractTrace(ctx, fields)
}
