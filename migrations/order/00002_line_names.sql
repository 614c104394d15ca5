-- +goose Up
-- The product's name when ordered, for receipts and notifications.
ALTER TABLE order_lines ADD COLUMN product_name text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE order_lines DROP COLUMN product_name;
