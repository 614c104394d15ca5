package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

func TestAdminCreateIsIdempotent(t *testing.T) {
	name := pgtest.NewName()
	t.Setenv("DATABASE_URL", pgtest.ServerURL())
	t.Setenv("MART_USER_DATABASE", name)
	t.Setenv("MART_LOG_LEVEL", "warn")
	t.Cleanup(func() { pgtest.Drop(t, name) })
	ctx := context.Background()

	var out, errs bytes.Buffer
	// Not a terminal: the password is the first line of stdin.
	for _, password := range []string{"admin passphrase\r\n", "another passphrase"} {
		err := adminCommand(ctx, []string{"create", "--email", "Boss@Mart.test", "--name", "Boss"}, strings.NewReader(password), &out, &errs)
		if err != nil {
			t.Fatalf("admin create: %v\n%s", err, errs.String())
		}
	}
	if !strings.Contains(out.String(), "boss@mart.test is an admin") {
		t.Errorf("output: %q", out.String())
	}
	dsn, _ := postgres.WithDatabase(pgtest.ServerURL(), name)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM users WHERE email = 'boss@mart.test' AND role = 'ADMIN' AND name = 'Boss'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d admins (%v), want 1", n, err)
	}

	for _, c := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"create"}, "admin passphrase\n", "usage"},
		{[]string{"delete", "--email", "a@b.c"}, "admin passphrase\n", "usage"},
		{[]string{"create", "--email", "weak@mart.test"}, "short\n", "at least 10"},
		{[]string{"create", "--email", "empty@mart.test"}, "", "read password"},
	} {
		err := adminCommand(ctx, c.args, strings.NewReader(c.stdin), &out, &errs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}
