// Package postgres opens a service's own database: it creates the database
// on the configured server if missing, applies the service's goose
// migrations, and returns a bun handle over pgx.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/onlinemart/mart/migrations"
)

// PlatformMigrations is the migration set every service database gets.
const PlatformMigrations = "platform"

var validName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// WithDatabase returns serverURL with its database path replaced by name.
func WithDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// EnsureDatabase creates database name on the server at serverURL if it
// does not exist yet. Concurrent callers are safe: a lost race is success.
func EnsureDatabase(ctx context.Context, serverURL, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("database name %q: want lower-case letters, digits and _", name)
	}
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("check database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// The name is validated above; identifiers cannot be bind parameters.
	_, err = admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Migrate applies the platform migrations and then each named migration set
// to the database at dsn. Each set keeps its own goose version table, so a
// service's history is independent of the platform's.
func Migrate(ctx context.Context, db *sql.DB, logger *slog.Logger, sets ...string) error {
	if logger == nil {
		logger = slog.Default()
	}
	for _, set := range append([]string{PlatformMigrations}, sets...) {
		sub, err := fs.Sub(migrations.FS, set)
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set, err)
		}
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
			goose.WithTableName("goose_"+set+"_version"),
			goose.WithSessionLocker(locker),
			goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", set, err)
		}
		for _, r := range results {
			logger.Info("migration applied", "set", set, "version", r.Source.Version, "file", r.Source.Path)
		}
	}
	return nil
}

// Options configure Open.
type Options struct {
	ServerURL  string   // Postgres server URL (any database path)
	Database   string   // this service's database name
	Migrations []string // migration sets to apply after the platform set
	Logger     *slog.Logger
	// MaxConns bounds the pool (default 20); half of it is kept idle.
	MaxConns int
}

// Open ensures the database exists, migrates it and returns a bun handle.
// It retries while the server is unreachable so a service can start before
// Postgres does; ctx bounds the wait.
func Open(ctx context.Context, o Options) (*bun.DB, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	dsn, err := WithDatabase(o.ServerURL, o.Database)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = EnsureDatabase(ctx, o.ServerURL, o.Database)
		if err == nil || ctx.Err() != nil || attempt == 10 {
			break
		}
		o.Logger.Warn("postgres not reachable, retrying", "database", o.Database, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, err
	}
	sqldb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 20
	}
	sqldb.SetMaxOpenConns(o.MaxConns)
	sqldb.SetMaxIdleConns(max(1, o.MaxConns/2))
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	if err := Migrate(ctx, sqldb, o.Logger, o.Migrations...); err != nil {
		sqldb.Close()
		return nil, err
	}
	return bun.NewDB(sqldb, pgdialect.New(), bun.WithDiscardUnknownColumns()), nil
}
