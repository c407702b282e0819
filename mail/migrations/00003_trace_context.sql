-- +goose Up
-- The trace context of whoever created the delivery (the command's stream
-- entry, an HTTP request) or last resent it, as the configured propagator's
-- fields in a JSON object ('' for none): the sender's SMTP attempts, made
-- later by another part of the process, continue that trace.
ALTER TABLE mail_deliveries ADD COLUMN trace_context text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE mail_deliveries DROP COLUMN trace_context;
