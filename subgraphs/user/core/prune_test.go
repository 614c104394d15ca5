package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/prune"
	"github.com/onlinemart/mart/subgraphs/user/core"
)

// Refresh tokens go a day after they expired; failure counts a day after
// the last failure, unless their lock still runs.
func TestPruneRules(t *testing.T) {
	db := pgtest.New(t, "user")
	ctx := context.Background()
	now := time.Now()
	day := 24 * time.Hour
	if _, err := db.DB.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, name, role) VALUES
		('0193c1d4-0000-7000-8000-000000000001', 'a@example.com', 'x', 'A', 'CUSTOMER')`); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]time.Time{"expired two days ago": now.Add(-2 * day), "expired an hour ago": now.Add(-time.Hour), "valid": now.Add(day)}
	for name, exp := range tokens {
		if _, err := db.DB.ExecContext(ctx, `INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
			VALUES (gen_random_uuid(), gen_random_uuid(), '0193c1d4-0000-7000-8000-000000000001', convert_to(?, 'UTF8'), ?)`, name, exp); err != nil {
			t.Fatal(err)
		}
	}
	attempts := []struct {
		email   string
		updated time.Time
		until   *time.Time
	}{
		{"stale@example.com", now.Add(-2 * day), nil},
		{"stale-locked@example.com", now.Add(-2 * day), ptr(now.Add(time.Hour))},
		{"fresh@example.com", now.Add(-time.Hour), nil},
	}
	for _, a := range attempts {
		if _, err := db.DB.ExecContext(ctx, `INSERT INTO login_attempts (email, failures, locked_until, updated_at) VALUES (?, 3, ?, ?)`, a.email, a.until, a.updated); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := prune.Once(ctx, db.DB, core.PruneRules(), now); err != nil {
		t.Fatal(err)
	}
	var kept []string
	if err := db.DB.NewRaw(`SELECT convert_from(token_hash, 'UTF8') FROM refresh_tokens ORDER BY 1`).Scan(ctx, &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 || kept[0] != "expired an hour ago" || kept[1] != "valid" {
		t.Errorf("refresh tokens kept: %v", kept)
	}
	kept = nil
	if err := db.DB.NewRaw(`SELECT email FROM login_attempts ORDER BY 1`).Scan(ctx, &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 || kept[0] != "fresh@example.com" || kept[1] != "stale-locked@example.com" {
		t.Errorf("failure counts kept: %v", kept)
	}
}
