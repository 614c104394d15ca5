package core

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Lockout policy: after MaxFailures consecutive failed sign-ins an email is
// locked for LockoutPeriod, whether an account has it or not, so the lock
// reveals nothing about who is registered.
const (
	MaxFailures   = 5
	LockoutPeriod = 15 * time.Minute
)

// lockedOut reports whether email is locked now.
func lockedOut(ctx context.Context, db bun.IDB, email string, now time.Time) (bool, error) {
	var until *time.Time
	err := db.NewRaw(`SELECT locked_until FROM login_attempts WHERE email = ?`, email).Scan(ctx, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return until != nil && until.After(now), err
}

// recordFailure counts a failed sign-in for email and reports whether it
// locked the email. One statement reads and updates the count, so
// concurrent failures on any replica are all counted. A lock that has
// expired starts the count afresh.
func recordFailure(ctx context.Context, db bun.IDB, email string, now time.Time) (locked bool, err error) {
	var failures int
	err = db.NewRaw(`
		INSERT INTO login_attempts AS a (email, failures, locked_until, updated_at)
		VALUES (?0, 1, NULL, ?1)
		ON CONFLICT (email) DO UPDATE SET
			failures = CASE WHEN a.locked_until <= ?1 THEN 1 ELSE a.failures + 1 END,
			locked_until = CASE
				WHEN (CASE WHEN a.locked_until <= ?1 THEN 1 ELSE a.failures + 1 END) >= ?2 THEN ?3::timestamptz
				ELSE NULL END,
			updated_at = ?1
		RETURNING failures`, email, now, MaxFailures, now.Add(LockoutPeriod)).Scan(ctx, &failures)
	return failures >= MaxFailures, err
}

// resetFailures forgets the failures of email after a successful sign-in.
func resetFailures(ctx context.Context, db bun.IDB, email string) error {
	_, err := db.NewRaw(`DELETE FROM login_attempts WHERE email = ?`, email).Exec(ctx)
	return err
}
