-- +goose Up
-- The trace of the intent's consume span as the configured propagator's
-- fields in a JSON object (traceparent, tracestate, baggage), so that a
-- hand-off made later from this table, a retry, continues the trace with
-- the producer's tracestate and baggage. It replaces the traceparent
-- column for new records; rows recorded before keep their traceparent,
-- which a hand-off reads when trace_context is absent.
ALTER TABLE notifications ADD COLUMN trace_context text;

-- +goose Down
ALTER TABLE notifications DROP COLUMN trace_context;
