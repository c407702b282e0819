-- +goose Up

-- One row per intent stream entry, keyed by its entry ID, so a redelivered
-- entry finds its earlier record instead of creating a second one.
CREATE TABLE notifications (
    intent_id          text PRIMARY KEY,
    -- The entry ID split into its two numbers: stream order, used for
    -- newest-first listing and cursors.
    id_ms              bigint NOT NULL,
    id_seq             bigint NOT NULL,
    notification_type  text   NOT NULL,
    producer           text   NOT NULL,
    audience_kind      text   NOT NULL,
    audience_json      text,
    payload_json       text,
    occurred_at_ms     bigint,
    idempotency_key    text,
    traceparent        text,
    status             text   NOT NULL,
    reason             text,
    duplicate_of       text,
    -- Every received field, sanitised and truncated; kept for rejected
    -- intents only, so an operator can see what was wrong.
    raw_fields         text,
    -- Earliest next hand-off attempt of a pending route; NULL once terminal.
    next_attempt_at_ms bigint,
    created_at_ms      bigint NOT NULL,
    updated_at_ms      bigint NOT NULL
);

CREATE INDEX notifications_order_idx ON notifications (id_ms DESC, id_seq DESC);
CREATE INDEX notifications_type_idx ON notifications (notification_type, id_ms DESC, id_seq DESC);
CREATE INDEX notifications_status_idx ON notifications (status, id_ms DESC, id_seq DESC);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at_ms) WHERE status = 'pending';

-- One row per recipient of a notification.
CREATE TABLE routes (
    intent_id          text   NOT NULL REFERENCES notifications (intent_id) ON DELETE CASCADE,
    route_id           text   NOT NULL,
    user_id            text,
    recipient          text,
    locale             text,
    status             text   NOT NULL,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    reason             text,
    idempotency_key    text   NOT NULL,
    next_attempt_at_ms bigint,
    last_attempt_at_ms bigint,
    mail_entry_id      text,
    -- Since when a mail command of this route may already be in the mail
    -- stream without being marked here (a hand-off cut short by a crash or
    -- an ambiguous Redis error); NULL when certainly not. Recovery looks
    -- for the command from that time before adding another.
    maybe_sent_since_ms bigint,
    routed_at_ms       bigint,
    created_at_ms      bigint NOT NULL,
    updated_at_ms      bigint NOT NULL,
    PRIMARY KEY (intent_id, route_id)
);

-- A producer's idempotency key and the intent that first carried it; rows
-- older than the retention window no longer count and are purged.
CREATE TABLE producer_keys (
    producer        text   NOT NULL,
    idempotency_key text   NOT NULL,
    intent_id       text   NOT NULL,
    created_at_ms   bigint NOT NULL,
    PRIMARY KEY (producer, idempotency_key)
);

CREATE INDEX producer_keys_created_idx ON producer_keys (created_at_ms);

-- +goose Down
DROP TABLE producer_keys;
DROP TABLE routes;
DROP TABLE notifications;
