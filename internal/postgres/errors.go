package postgres

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUniqueViolation reports whether err is Postgres refusing a statement
// because it would break the unique constraint (or index) named
// constraint.
func IsUniqueViolation(err error, constraint string) bool {
	return isViolation(err, "23505", constraint)
}

// IsCheckViolation reports whether err is Postgres refusing a statement
// because it would break the check constraint named constraint.
func IsCheckViolation(err error, constraint string) bool {
	return isViolation(err, "23514", constraint)
}

func isViolation(err error, code, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code && pgErr.ConstraintName == constraint
}

// Now is the current time in UTC at the precision Postgres stores
// (microseconds), so that a time a service returns is the time it stored.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
