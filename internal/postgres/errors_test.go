package postgres_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinemart/mart/internal/postgres"
)

func TestViolationsNameTheirConstraint(t *testing.T) {
	unique := fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: "users_email_key"})
	check := fmt.Errorf("update: %w", &pgconn.PgError{Code: "23514", ConstraintName: "stock_invariant"})
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"unique, its constraint", postgres.IsUniqueViolation(unique, "users_email_key"), true},
		{"unique, another constraint", postgres.IsUniqueViolation(unique, "products_sku_key"), false},
		{"check as unique", postgres.IsUniqueViolation(check, "stock_invariant"), false},
		{"check, its constraint", postgres.IsCheckViolation(check, "stock_invariant"), true},
		{"unique as check", postgres.IsCheckViolation(unique, "users_email_key"), false},
		{"not a Postgres error", postgres.IsUniqueViolation(errors.New("23505"), ""), false},
		{"nil", postgres.IsCheckViolation(nil, ""), false},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestNowIsUTCMicroseconds(t *testing.T) {
	n := postgres.Now()
	if n.Location() != time.UTC || n.Nanosecond()%1000 != 0 {
		t.Errorf("Now() = %v", n)
	}
}
