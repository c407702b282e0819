-- +goose Up

-- One row per game the manager has been asked to run: the state machine of
-- docs/rtmanager.md and what the probe needs to reach the game server.
CREATE TABLE runtimes (
    game_id            text PRIMARY KEY,
    state              text NOT NULL CHECK (state IN ('starting', 'running', 'unhealthy', 'stopped', 'failed')),
    image_ref          text NOT NULL DEFAULT '',
    container_id       text NOT NULL DEFAULT '',
    container_ip       text NOT NULL DEFAULT '',
    port               integer NOT NULL DEFAULT 8080,
    health_path        text NOT NULL DEFAULT '/healthz',
    -- '' until the first probe answers, then 'healthy' or 'unhealthy'; a
    -- health event is published only when this changes.
    health             text NOT NULL DEFAULT '' CHECK (health IN ('', 'healthy', 'unhealthy')),
    last_error_code    text NOT NULL DEFAULT '',
    last_error_message text NOT NULL DEFAULT '',
    last_job_id        text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The outcome of every job, keyed by its ID: a redelivered entry finds its
-- outcome here and is not executed again.
CREATE TABLE runtime_jobs (
    job_kind        text NOT NULL CHECK (job_kind IN ('start', 'stop')),
    job_id          text NOT NULL,
    stream_entry_id text NOT NULL,
    game_id         text NOT NULL,
    image_ref       text NOT NULL DEFAULT '',
    outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    error_code      text NOT NULL DEFAULT '',
    error_message   text NOT NULL DEFAULT '',
    container_id    text NOT NULL DEFAULT '',
    finished_at     timestamptz NOT NULL,
    PRIMARY KEY (job_kind, job_id)
);

-- Stream entries to publish, written in the same transaction as the state
-- they announce (transactional outbox). published_at marks what went out.
CREATE TABLE runtime_outbox (
    id           bigserial PRIMARY KEY,
    dedup_key    text NOT NULL UNIQUE,
    stream       text NOT NULL,
    fields       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    entry_id     text NOT NULL DEFAULT ''
);

CREATE INDEX runtime_outbox_unpublished ON runtime_outbox (id) WHERE published_at IS NULL;

-- +goose Down
DROP TABLE runtime_outbox;
DROP TABLE runtime_jobs;
DROP TABLE runtimes;
