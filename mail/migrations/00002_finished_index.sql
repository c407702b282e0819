-- +goose Up
-- Retention deletes finished deliveries by age; this index lets it read the
-- old finished ones only, never the whole table.
CREATE INDEX mail_deliveries_finished ON mail_deliveries (created_at)
    WHERE status IN ('sent', 'failed');

-- +goose Down
DROP INDEX mail_deliveries_finished;
