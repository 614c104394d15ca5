-- +goose Up
-- The order a notification is about, NULL when none (a welcome email), so
-- an order's notifications can be found and counted per template and
-- channel. Older rows keep NULL: not backfilled.
ALTER TABLE notifications ADD COLUMN order_id uuid;
CREATE INDEX notifications_order_idx ON notifications (order_id) WHERE order_id IS NOT NULL;

-- +goose Down
DROP INDEX notifications_order_idx;
ALTER TABLE notifications DROP COLUMN order_id;
