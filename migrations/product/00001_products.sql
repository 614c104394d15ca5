-- +goose Up
CREATE TABLE products (
    id           uuid PRIMARY KEY,
    sku          text        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    price_amount bigint      NOT NULL CHECK (price_amount >= 0),
    currency     char(3)     NOT NULL,
    category     text        NOT NULL DEFAULT '',
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', description), 'B')) STORED
);
-- SKUs are unique regardless of case.
CREATE UNIQUE INDEX products_sku_key ON products (lower(sku));
-- Keyset pagination walks (created_at, id).
CREATE INDEX products_page_idx ON products (created_at, id);
CREATE INDEX products_category_idx ON products (category, created_at, id);
CREATE INDEX products_search_idx ON products USING gin (search);

-- +goose Down
DROP TABLE products;
