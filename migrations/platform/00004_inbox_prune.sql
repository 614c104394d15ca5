-- +goose Up
-- Inbox entries are pruned once their retention ends (internal/prune):
-- the deletes find them by age.
CREATE INDEX inbox_handled_at_idx ON inbox (handled_at);

-- +goose Down
DROP INDEX inbox_handled_at_idx;
