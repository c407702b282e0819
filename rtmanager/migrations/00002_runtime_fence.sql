-- +goose Up

-- The fencing number of the newest game lease that wrote the row (see
-- rtmanager/lease). Writes made under a lease carry its number and are
-- refused when a larger one is stored: a holder that lost its lease cannot
-- overwrite what its successor recorded. 0: written under no lease yet.
ALTER TABLE runtimes ADD COLUMN fence bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runtimes DROP COLUMN fence;
