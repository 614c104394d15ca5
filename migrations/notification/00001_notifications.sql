-- +goose Up
-- How to reach each user, from user.events.v1. updated_at is the time of
-- the event the row came from: an older event never overwrites a newer one.
CREATE TABLE contacts (
    user_id    uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    phone      text        NOT NULL DEFAULT '', -- '' when none
    updated_at timestamptz NOT NULL
);

-- What each order was, from OrderPlaced: who placed it (payment events
-- carry no user) and its lines for the confirmation.
CREATE TABLE orders (
    order_id   uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    lines      jsonb       NOT NULL,
    total      bigint      NOT NULL,
    currency   text        NOT NULL,
    placed_at  timestamptz NOT NULL
);

-- Which channels a user wants per category; no row means the defaults.
CREATE TABLE preferences (
    user_id         uuid        PRIMARY KEY,
    account_email   boolean     NOT NULL,
    account_sms     boolean     NOT NULL,
    order_email     boolean     NOT NULL,
    order_sms       boolean     NOT NULL,
    marketing_email boolean     NOT NULL,
    marketing_sms   boolean     NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Events that trigger a notification but arrived before what it needs
-- (the order, for its user and lines; the user's contact): they come on
-- other topics, in any relative order. Each waits for one order or one
-- user and is replayed, in the same transaction, by the event that brings
-- it.
CREATE TABLE parked_events (
    event_id   text        PRIMARY KEY,
    type       text        NOT NULL,
    payload    bytea       NOT NULL,
    event_time timestamptz NOT NULL,
    order_id   uuid,
    user_id    uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT parked_events_waits_check CHECK ((order_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX parked_events_order_idx ON parked_events (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX parked_events_user_idx ON parked_events (user_id) WHERE user_id IS NOT NULL;

-- One message to one user over one channel, rendered when recorded. The
-- delivery worker picks QUEUED rows whose next_attempt_at has passed;
-- claiming one pushes next_attempt_at out as a lease, so a worker that
-- dies mid-send leaves it to be retried.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,
    event_id        text        NOT NULL,
    user_id         uuid        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('EMAIL', 'SMS')),
    category        text        NOT NULL CHECK (category IN ('ACCOUNT', 'ORDER_UPDATES', 'MARKETING')),
    template        text        NOT NULL,
    recipient       text        NOT NULL, -- email address or phone number
    subject         text        NOT NULL DEFAULT '',
    body_text       text        NOT NULL,
    body_html       text        NOT NULL DEFAULT '',
    status          text        NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    sent_at         timestamptz,
    -- Set on an admin's re-send: a copy of that notification.
    resend_of       uuid        REFERENCES notifications (id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT notifications_queue_check CHECK ((status = 'QUEUED') = (next_attempt_at IS NOT NULL))
);
-- One notification per event and channel, however often the event comes;
-- re-sends are the exception.
CREATE UNIQUE INDEX notifications_event_channel_key ON notifications (event_id, channel) WHERE resend_of IS NULL;
-- The worker's queue: only rows still to deliver.
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'QUEUED';
-- A user's notifications, newest first by (created_at, id).
CREATE INDEX notifications_user_page_idx ON notifications (user_id, created_at, id);

-- +goose Down
DROP TABLE notifications;
DROP TABLE parked_events;
DROP TABLE preferences;
DROP TABLE orders;
DROP TABLE contacts;
