-- +goose Up
CREATE TABLE users (
    user_id             text        PRIMARY KEY,
    email               text        NOT NULL,
    display_name        text        NOT NULL,
    locale              text        NOT NULL,
    email_notifications boolean     NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Addresses are compared without regard to case, as mail systems do in
-- practice; the address itself is kept as the user wrote it.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- +goose Down
DROP TABLE users;
