-- +goose Up
-- Retention deletes finished records by age (platform/housekeeping); these
-- indexes let it read the old finished rows only, never a whole table.
CREATE INDEX runtime_jobs_finished ON runtime_jobs (finished_at);
CREATE INDEX runtime_outbox_published ON runtime_outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX runtimes_ended ON runtimes (updated_at) WHERE state IN ('stopped', 'failed');

-- +goose Down
DROP INDEX runtimes_ended;
DROP INDEX runtime_outbox_published;
DROP INDEX runtime_jobs_finished;
