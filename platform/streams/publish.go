package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// The trace fields a stream entry may carry: W3C trace context, set and
// read through the configured propagator (OTEL_PROPAGATORS). Only these
// two ride a stream: the contract fixes each stream's field set (Mail
// rejects a command with any other field), so baggage and other formats'
// headers (b3, ...) stay within a process.
const (
	TraceparentField = "traceparent"
	TracestateField  = "tracestate"
)

var traceFields = []string{TraceparentField, TracestateField}

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
	for _, k := range traceFields {
		if v := carrier.Get(k); v != "" {
			fields[k] = v
		}
	}
}

// Publish appends values to stream, adding the caller's trace context
// (InjectTrace), and returns the entry ID.
func Publish(ctx context.Context, c redis.Cmdable, stream string, values map[string]string) (string, error) {
	fields := make(map[string]string, len(values)+len(traceFields))
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
	for _, k := range traceFields {
		if v, ok := values[k]; ok {
			carrier[k] = v
		}
	}
	return otel.GetTextMapPropagator().Extract(ctx, carrier)
}
