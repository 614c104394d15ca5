package pgtest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

// A test database has the platform tables and the requested service's, and
// applying the migrations again changes nothing.
func TestNewDatabaseIsMigrated(t *testing.T) {
	d := pgtest.New(t, "product")
	ctx := context.Background()
	for _, table := range []string{"outbox", "inbox", "products"} {
		var n int
		if err := d.DB.NewRaw("SELECT count(*) FROM "+table).Scan(ctx, &n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	if err := postgres.Migrate(ctx, d.DB.DB, nil, "product"); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestEnsureDatabaseRejectsUnsafeNames(t *testing.T) {
	if err := postgres.EnsureDatabase(context.Background(), pgtest.ServerURL(), `x"; DROP DATABASE postgres; --`); err == nil {
		t.Fatal("want an error")
	}
}

func TestEnsureDatabaseIsIdempotent(t *testing.T) {
	name := pgtest.NewName()
	t.Cleanup(func() { pgtest.Drop(t, name) })
	for range 2 {
		if err := postgres.EnsureDatabase(context.Background(), pgtest.ServerURL(), name); err != nil {
			t.Fatal(err)
		}
	}
	admin, _ := sql.Open("pgx", pgtest.ServerURL())
	defer admin.Close()
	var exists bool
	_ = admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if !exists {
		t.Fatal("database not created")
	}
}
