package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestServerRestartKeepsCommittedData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := StartServer(t, ServerOptions{})
	if s.URL() == ServerURL() || s.Addr() == "127.0.0.1:5432" {
		t.Fatalf("private server shares the shared server's address %s", s.Addr())
	}

	connect := func() *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	exec := func(c *pgx.Conn, sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	startTime := func(c *pgx.Conn) time.Time {
		t.Helper()
		var at time.Time
		if err := c.QueryRow(ctx, `SELECT pg_postmaster_start_time()`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	// restart restarts the server under an open connection and checks it
	// really went away: the old session is dead and a new postmaster runs.
	restart := func(old *pgx.Conn, mode StopMode) *pgx.Conn {
		t.Helper()
		before := startTime(old)
		if err := s.Restart(ctx, mode); err != nil {
			t.Fatalf("restart %s: %v", mode, err)
		}
		if _, err := old.Exec(ctx, `SELECT 1`); err == nil {
			t.Fatalf("restart %s: a connection from before the restart still works", mode)
		}
		c := connect()
		if after := startTime(c); !after.After(before) {
			t.Fatalf("restart %s: postmaster start time %v, not after %v", mode, after, before)
		}
		return c
	}
	rows := func(c *pgx.Conn) int {
		t.Helper()
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	c := connect()
	exec(c, `CREATE TABLE t (id int PRIMARY KEY)`)
	exec(c, `INSERT INTO t VALUES (1)`)

	c = restart(c, Fast)
	if n := rows(c); n != 1 {
		t.Fatalf("after fast restart: %d rows, want 1", n)
	}
	exec(c, `INSERT INTO t VALUES (2)`)

	c = restart(c, Immediate)
	if n := rows(c); n != 2 {
		t.Fatalf("after immediate restart: %d rows, want 2 (committed data lost in a crash)", n)
	}
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "not properly shut down") {
		t.Errorf("immediate stop did not lead to crash recovery; log:\n%s", log)
	}
}

func TestServerStopIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := StartServer(t, ServerOptions{MaxConnections: 20})
	for range 2 {
		if err := s.Stop(ctx, Fast); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pgx.Connect(ctx, s.URL()); err == nil {
		t.Fatal("stopped server accepts connections")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var got string
	if err := c.QueryRow(ctx, `SHOW max_connections`).Scan(&got); err != nil || got != "20" {
		t.Fatalf("max_connections = %q, %v; want 20", got, err)
	}
}
