-- +goose Up
CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
-- Slow enough that two migrators overlap when they start together.
SELECT pg_sleep(0.5);

-- +goose Down
DROP TABLE accounts;
