-- +goose Up
-- Wake the charge workers when a payment becomes due (jobs_notify).
CREATE TRIGGER payments_due AFTER INSERT OR UPDATE OF next_attempt_at ON payments
    FOR EACH ROW EXECUTE FUNCTION jobs_notify('payments');

-- +goose Down
DROP TRIGGER payments_due ON payments;
