package store

import (
	"context"

	"galaxy/platform/streams"
)

// Traced returns ctx continuing the delivery's stored trace (TraceContext),
// or ctx as it is when the delivery has none.
func (d Delivery) Traced(ctx context.Context) context.Context {
	return streams.DecodeTrace(ctx, d.TraceContext)
}
