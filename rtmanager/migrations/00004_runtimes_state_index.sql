-- +goose Up
-- rtmanager_games{state} counts the records of each state at every scrape
-- (rtmanager/backlog); this index lets each count read that state's rows
-- only, capped (store.GamesByState), never the whole table.
CREATE INDEX runtimes_state ON runtimes (state);

-- +goose Down
DROP INDEX runtimes_state;
