-- +goose Up
-- The order service's copy of the catalog, built from product events, so
-- placing an order needs no call to the product service. updated_at is the
-- product's own, to apply an event only if it is newer than what we hold.
CREATE TABLE catalog_products (
    product_id   uuid PRIMARY KEY,
    name         text        NOT NULL,
    price_amount bigint      NOT NULL,
    currency     char(3)     NOT NULL,
    active       boolean     NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    user_id          uuid        NOT NULL,
    status           text        NOT NULL CHECK (status IN
        ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    status_reason    text CHECK (status_reason IN
        ('OUT_OF_STOCK', 'PAYMENT_DECLINED', 'PAYMENT_FAILED', 'CUSTOMER_CANCELLED')),
    total_amount     bigint      NOT NULL CHECK (total_amount >= 0),
    currency         char(3)     NOT NULL,
    ship_name        text        NOT NULL,
    ship_line1       text        NOT NULL,
    ship_line2       text,
    ship_city        text        NOT NULL,
    ship_postal_code text        NOT NULL,
    ship_country     char(2)     NOT NULL,
    -- A repeated placeOrder with the same key returns the first order; NULLs
    -- (no key) never conflict.
    idempotency_key  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT orders_idempotency_key UNIQUE (user_id, idempotency_key)
);
-- Keyset pagination walks (created_at, id): all orders (admin), one user's,
-- one status's.
CREATE INDEX orders_page_idx ON orders (created_at, id);
CREATE INDEX orders_user_page_idx ON orders (user_id, created_at, id);
CREATE INDEX orders_status_page_idx ON orders (status, created_at, id);

-- Lines keep the unit price the customer saw when ordering.
CREATE TABLE order_lines (
    order_id     uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position     int     NOT NULL,
    product_id   uuid    NOT NULL,
    quantity     int     NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_amount  bigint  NOT NULL CHECK (unit_amount >= 0),
    line_amount  bigint  NOT NULL CHECK (line_amount >= 0),
    currency     char(3) NOT NULL,
    PRIMARY KEY (order_id, position),
    UNIQUE (order_id, product_id)
);

-- Every status an order has had, in order: seq 1 is PENDING.
CREATE TABLE order_history (
    order_id uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq      int         NOT NULL,
    status   text        NOT NULL,
    reason   text,
    at       timestamptz NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- +goose Down
DROP TABLE order_history;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE catalog_products;
