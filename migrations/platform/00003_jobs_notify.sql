-- +goose Up
-- Wakes the workers of a job queue (internal/jobs) when one of its rows
-- becomes due: inserted or rescheduled with next_attempt_at already past.
-- A claim pushes next_attempt_at into the future as a lease and a retry
-- schedules it later; neither notifies (the workers poll for those).
-- clock_timestamp(), not now(): the application stamps next_attempt_at
-- after the transaction began. The channel is the trigger's argument.
-- +goose StatementBegin
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_attempt_at IS NOT NULL AND NEW.next_attempt_at <= clock_timestamp() THEN
        PERFORM pg_notify(TG_ARGV[0], '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION jobs_notify();
