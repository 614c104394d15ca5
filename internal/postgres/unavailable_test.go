package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

// Only an unreachable server is an outage: statements the server refuses
// and a pool the program closed are not.
func TestUnavailable(t *testing.T) {
	server := pgtest.StartServer(t, pgtest.ServerOptions{})
	ctx := context.Background()
	db, err := sql.Open("pgx", server.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)`)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		"syntax error":     `SELEC 1`,
		"unique violation": `INSERT INTO t VALUES (1)`,
		"missing table":    `SELECT * FROM nope`,
	}
	for name, q := range refused {
		if _, err := db.ExecContext(ctx, q); err == nil || postgres.Unavailable(err) {
			t.Errorf("%s: %v counted as unavailable", name, err)
		}
	}

	if err := server.Stop(ctx, pgtest.Immediate); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // a dead pooled connection, then refused connections
		if _, err := db.ExecContext(ctx, `SELECT 1`); !postgres.Unavailable(err) {
			t.Errorf("query %d with the server down: %v not counted as unavailable", i+1, err)
		}
	}

	closed, _ := sql.Open("pgx", server.URL())
	closed.Close()
	if _, err := closed.ExecContext(ctx, `SELECT 1`); postgres.Unavailable(err) {
		t.Errorf("a closed pool (%v) counted as unavailable", err)
	}
}
