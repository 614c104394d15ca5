-- +goose Up
-- The CloudEvents source of each event (e.g. "mart/product"), so the relay
-- publishes what the writer meant without guessing it from the topic.
ALTER TABLE outbox ADD COLUMN source text NOT NULL DEFAULT '';

-- Wake the relay as soon as an outbox insert commits (NOTIFY is delivered at
-- commit, never for a rolled-back transaction). One notification per
-- statement is enough: the relay drains everything pending when it wakes.
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
ALTER TABLE outbox DROP COLUMN source;
