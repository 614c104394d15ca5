// Package pgtest gives each test a fresh, migrated database on the real
// Postgres server named by DATABASE_URL (local default), dropped afterwards.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/internal/postgres"
)

// ServerURL returns the Postgres server tests run against: the one the
// services would use, as declared by postgres.ServerURLVar.
func ServerURL() string {
	var u string
	if err := envvar.Load([]envvar.Var{postgres.ServerURLVar(&u)}, os.LookupEnv); err != nil {
		panic(err)
	}
	return u
}

// Database is a throw-away database for one test.
type Database struct {
	Name string
	URL  string // connection URL of the database itself
	DB   *bun.DB
}

// New creates a fresh database, applies the platform migrations and the
// named sets, and drops it when the test ends.
func New(t testing.TB, sets ...string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := NewName()
	db, err := postgres.Open(ctx, postgres.Options{ServerURL: ServerURL(), Database: name, Migrations: sets, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", name, err)
	}
	dsn, _ := postgres.WithDatabase(ServerURL(), name)
	t.Cleanup(func() {
		db.Close()
		Drop(t, name)
	})
	return &Database{Name: name, URL: dsn, DB: db}
}

// NewName returns a unique database name for a test.
func NewName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test_" + hex.EncodeToString(b)
}

// Drop removes database name, disconnecting any sessions left on it.
func Drop(t testing.TB, name string) {
	admin, err := sql.Open("pgx", ServerURL())
	if err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
		return
	}
	defer admin.Close()
	if _, err := admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`); err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
	}
}

// Count runs query, which must return one integer (a count, say), and
// returns it; it fails the test on any error.
func (d *Database) Count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.DB.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
