-- +goose Up
-- notification_dead_routes counts the dead routes at every scrape
-- (notification/backlog); this partial index holds exactly those, so the
-- count reads them only, never the routed and skipped history.
CREATE INDEX routes_dead_idx ON routes (intent_id) WHERE status = 'dead';

-- +goose Down
DROP INDEX routes_dead_idx;
