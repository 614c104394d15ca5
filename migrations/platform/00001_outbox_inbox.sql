-- +goose Up
-- Events waiting to be published; written in the same transaction as the
-- change they describe, deleted once the broker acknowledged them.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    type        text        NOT NULL,
    payload     bytea       NOT NULL,
    traceparent text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Events each consumer group has handled, recorded in the handler's
-- transaction so a redelivery is recognised and skipped.
CREATE TABLE inbox (
    consumer   text        NOT NULL,
    event_id   text        NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE inbox;
DROP TABLE outbox;
