-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    name          text        NOT NULL,
    phone         text,
    role          text        NOT NULL DEFAULT 'CUSTOMER' CHECK (role IN ('CUSTOMER', 'ADMIN')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case (they are also stored lower-case).
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
-- Keyset pagination walks (created_at, id).
CREATE INDEX users_page_idx ON users (created_at, id);

-- One row per refresh token. Tokens rotate on every use; the tokens of one
-- sign-in share a family, which is the session id access tokens carry.
-- Only a SHA-256 hash of each token is kept.
CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea       NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Consecutive failed sign-ins per email, known or not, so the lockout
-- reveals nothing and every replica sees the same count.
CREATE TABLE login_attempts (
    email        text PRIMARY KEY,
    failures     int         NOT NULL,
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Ed25519 keys that sign access tokens: the newest active one signs, every
-- active one verifies and is published in the JWKS.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_key bytea       NOT NULL, -- PKCS#8 PEM
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE login_attempts;
DROP TABLE refresh_tokens;
DROP TABLE users;
