package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
)

// TraceparentField carries the W3C trace context across stream hops.
const TraceparentField = "traceparent"

var traceContext = propagation.TraceContext{}

// Publish appends values to stream, adding the caller's traceparent, and
// returns the entry ID.
func Publish(ctx context.Context, c redis.Cmdable, stream string, values map[string]string) (string, error) {
	args := make(map[string]any, len(values)+1)
	for k, v := range values {
		args[k] = v
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	if tp := carrier.Get(TraceparentField); tp != "" {
		if _, ok := args[TraceparentField]; !ok {
			args[TraceparentField] = tp
		}
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: args}).Result()
	if err != nil {
		return "", fmt.Errorf("publish to %s: %w", stream, err)
	}
	return id, nil
}

// ExtractTrace returns ctx carrying the remote span context of an entry's
// traceparent, if it has one.
func ExtractTrace(ctx context.Context, values map[string]string) context.Context {
	tp, ok := values[TraceparentField]
	if !ok {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{TraceparentField: tp})
}
