-- +goose Up
-- One row per product: units in the warehouse (on_hand) and, of those,
-- units promised to orders that are not confirmed yet (reserved).
CREATE TABLE stock (
    product_id          uuid        PRIMARY KEY,
    on_hand             integer     NOT NULL DEFAULT 0,
    reserved            integer     NOT NULL DEFAULT 0,
    -- StockLow is published when available stock falls below this.
    low_stock_threshold integer     NOT NULL DEFAULT 5 CHECK (low_stock_threshold >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- The stock invariant (DESIGN §6), held here whatever the code does.
    CONSTRAINT stock_invariant CHECK (reserved >= 0 AND on_hand >= reserved)
);

-- The ledger: every change of a stock row, written in the same transaction,
-- so on_hand and reserved are the sums of their movements' deltas.
CREATE TABLE stock_movements (
    id              uuid        PRIMARY KEY,
    product_id      uuid        NOT NULL REFERENCES stock,
    kind            text        NOT NULL,
    on_hand_delta   integer     NOT NULL,
    reserved_delta  integer     NOT NULL,
    on_hand_after   integer     NOT NULL,
    reserved_after  integer     NOT NULL,
    order_id        uuid,
    reason          text,
    -- Set by adjustStock: a repeated key returns the first movement.
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    CONSTRAINT stock_movements_idempotency_key UNIQUE (idempotency_key),
    -- Each kind moves the counters one way only.
    CONSTRAINT stock_movements_kind CHECK (CASE kind
        WHEN 'RECEIPT'     THEN on_hand_delta > 0 AND reserved_delta = 0
        WHEN 'ADJUSTMENT'  THEN on_hand_delta < 0 AND reserved_delta = 0
        WHEN 'RESERVATION' THEN on_hand_delta = 0 AND reserved_delta > 0
        WHEN 'RELEASE'     THEN on_hand_delta = 0 AND reserved_delta < 0
        WHEN 'COMMIT'      THEN on_hand_delta < 0 AND reserved_delta = on_hand_delta
        WHEN 'RESTOCK'     THEN on_hand_delta > 0 AND reserved_delta = 0
        ELSE false END)
);
-- Keyset pagination of one product's movements walks (created_at, id).
CREATE INDEX stock_movements_page_idx ON stock_movements (product_id, created_at, id);

-- What inventory did about each order it heard of, so every saga step
-- happens once whatever the order of events. CANCELLED marks an order
-- cancelled before its OrderPlaced arrived: it is never reserved.
CREATE TABLE orders (
    order_id   uuid        PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('RESERVED', 'FAILED', 'COMMITTED', 'RELEASED', 'RESTOCKED', 'CANCELLED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The units each order holds of each product.
CREATE TABLE reservations (
    order_id   uuid        NOT NULL REFERENCES orders,
    product_id uuid        NOT NULL REFERENCES stock,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    state      text        NOT NULL CHECK (state IN ('RESERVED', 'COMMITTED', 'RELEASED', 'RESTOCKED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX reservations_product_idx ON reservations (product_id);

-- +goose Down
DROP TABLE reservations;
DROP TABLE orders;
DROP TABLE stock_movements;
DROP TABLE stock;
