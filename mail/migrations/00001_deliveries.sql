-- +goose Up

-- One row per delivery. The idempotency key is UNIQUE: a second command with
-- the same key, from any replica, at any time, finds the first row instead of
-- creating another.
CREATE TABLE mail_deliveries (
    delivery_id        text        PRIMARY KEY,
    -- Insertion order: newest-first listing and its cursors.
    seq                bigserial   NOT NULL UNIQUE,
    idempotency_key    text        NOT NULL UNIQUE,
    -- SHA-256 of the canonical command, to tell a replay from a conflict.
    command_hash       text        NOT NULL,
    source             text        NOT NULL,
    payload_mode       text        NOT NULL CHECK (payload_mode IN ('template', 'rendered')),
    template_id        text        NOT NULL DEFAULT '',
    -- The requested locale, and the one whose template was used.
    locale             text        NOT NULL DEFAULT '',
    resolved_locale    text        NOT NULL DEFAULT '',
    template_variables jsonb,
    to_addrs           text[]      NOT NULL,
    cc_addrs           text[]      NOT NULL DEFAULT '{}',
    bcc_addrs          text[]      NOT NULL DEFAULT '{}',
    reply_to           text        NOT NULL DEFAULT '',
    -- Lower-cased address parts of to, cc and bcc, for the recipient filter.
    recipients         text[]      NOT NULL,
    -- The message as rendered (template mode) or as given (rendered mode).
    subject            text        NOT NULL DEFAULT '',
    text_body          text        NOT NULL DEFAULT '',
    html_body          text        NOT NULL DEFAULT '',
    status             text        NOT NULL CHECK (status IN ('queued', 'sending', 'retrying', 'sent', 'failed')),
    -- Why the delivery is failed, or why its last attempt failed (retrying).
    error_code         text        NOT NULL DEFAULT '',
    error_message      text        NOT NULL DEFAULT '',
    -- Every attempt of every sequence, oldest first.
    attempts           jsonb       NOT NULL DEFAULT '[]',
    -- Attempts claimed in the current sequence; an operator resend starts a
    -- new sequence with a fresh budget.
    attempt_count      integer     NOT NULL DEFAULT 0,
    sequence           integer     NOT NULL DEFAULT 1,
    -- queued/retrying: when the next attempt is due; sending: when the claim
    -- expires and another sender may take the delivery again.
    due_at             timestamptz,
    claim_token        text        NOT NULL DEFAULT '',
    claimed_at         timestamptz,
    stream_entry_id    text        NOT NULL DEFAULT '',
    requested_at_ms    bigint      NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    sent_at            timestamptz
)
-- Rows up to a page stay inline and uncompressed: a typical message is a few
-- kilobytes, and compressing every insert costs more CPU than it saves disk.
WITH (toast_tuple_target = 8160);

-- The senders' work queue: only unfinished deliveries are in it.
CREATE INDEX mail_deliveries_due ON mail_deliveries (due_at)
    WHERE status IN ('queued', 'retrying', 'sending');

-- List filters, each with the listing order.
CREATE INDEX mail_deliveries_source ON mail_deliveries (source, seq);
CREATE INDEX mail_deliveries_status ON mail_deliveries (status, seq);
CREATE INDEX mail_deliveries_template ON mail_deliveries (template_id, seq);
CREATE INDEX mail_deliveries_recipients ON mail_deliveries USING gin (recipients);

-- +goose Down
DROP TABLE mail_deliveries;
