-- +goose Up
-- Expired refresh tokens and stale failure counts are pruned
-- (core.PruneRules); the deletes find them by time.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX login_attempts_updated_at_idx ON login_attempts (updated_at);

-- +goose Down
DROP INDEX login_attempts_updated_at_idx;
DROP INDEX refresh_tokens_expires_at_idx;
