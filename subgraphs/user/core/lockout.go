package core

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/prune"
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

// PruneRules are the user service's rows that outlive their use: refresh
// tokens a day after they expired (a token that old is refused whatever
// its state, so its row decides nothing), and failure counts not touched
// for a day, unless a lock still runs: failed sign-ins for every address
// an attacker tries must not pile up forever.
func PruneRules() []prune.Rule {
	return []prune.Rule{
		{Table: "refresh_tokens", Where: "expires_at < ?0", Keep: 24 * time.Hour},
		{Table: "login_attempts", Where: "updated_at < ?0 AND (locked_until IS NULL OR locked_until < ?0)", Keep: 24 * time.Hour},
	}
}
