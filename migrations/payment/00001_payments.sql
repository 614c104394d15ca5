-- +goose Up
-- One payment per order, created by whichever saga event about the order
-- arrives first (OrderPlaced, StockReserved or the order's cancellation):
-- the events come on different topics, in any relative order. One row per
-- order, and the payment id as the provider's idempotency key, mean an
-- order is charged at most once, ever.
CREATE TABLE payments (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    -- Known from OrderPlaced (or the cancellation, if it came first).
    user_id         uuid,
    amount          bigint      NOT NULL DEFAULT 0 CHECK (amount >= 0),
    currency        text        NOT NULL DEFAULT '',
    -- The customer's payment method, kept only while a charge may still
    -- happen: cleared when the charge ends or the order is cancelled.
    token           text,
    provider        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN
                        ('PENDING', 'CHARGING', 'SUCCEEDED', 'FAILED', 'REFUNDED', 'CANCELLED')),
    -- Which saga events were seen: charging needs both placed and reserved;
    -- a cancellation stops a charge that has not started and refunds one
    -- that succeeded.
    placed_at       timestamptz,
    reserved_at     timestamptz,
    cancelled_at    timestamptz,
    -- Provider calls so far. The charge worker picks rows whose
    -- next_attempt_at has passed; claiming a row pushes it out as a lease,
    -- so a worker that dies mid-call leaves it to be retried with the same
    -- idempotency key. NULL: nothing to do.
    charge_attempts int         NOT NULL DEFAULT 0,
    refund_attempts int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    charge_id       text,
    refund_id       text,
    failure_code    text,
    failure_reason  text,
    -- The trace the work belongs to, so the worker's events continue it.
    traceparent     text        NOT NULL DEFAULT '',
    charged_at      timestamptz,
    refunded_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_order_id_key UNIQUE (order_id),
    CONSTRAINT payments_work_check CHECK (next_attempt_at IS NULL OR status IN ('CHARGING', 'SUCCEEDED'))
);
-- The worker's queue: only rows with work to do.
CREATE INDEX payments_due_idx ON payments (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- Keyset pagination walks (created_at, id), optionally within a status.
CREATE INDEX payments_page_idx ON payments (created_at, id);
CREATE INDEX payments_status_page_idx ON payments (status, created_at, id);

-- +goose Down
DROP TABLE payments;
