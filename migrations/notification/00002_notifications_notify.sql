-- +goose Up
-- Wake the delivery workers when a notification becomes due (jobs_notify).
CREATE TRIGGER notifications_due AFTER INSERT OR UPDATE OF next_attempt_at ON notifications
    FOR EACH ROW EXECUTE FUNCTION jobs_notify('notifications');

-- +goose Down
DROP TRIGGER notifications_due ON notifications;
