package prune_test

import (
	"context"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/prune"
)

// Rows past their retention go, in as many batches as it takes; the rest
// stay.
func TestOnceDeletesWhatOutlivedItsRetention(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Now()
	// 12,001 entries eight days old (three batches), three from today.
	if _, err := db.DB.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, handled_at)
		SELECT 'order', 'old-' || i, ?::timestamptz FROM generate_series(1, 12001) i`, now.Add(-8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, handled_at)
		SELECT 'order', 'new-' || i, ?::timestamptz FROM generate_series(1, 3) i`, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	rules := []prune.Rule{{Table: "inbox", Where: "handled_at < ?0", Keep: 7 * 24 * time.Hour}}

	n, err := prune.Once(ctx, db.DB, rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if n["inbox"] != 12001 {
		t.Fatalf("pruned %v, want 12001 inbox rows", n)
	}
	var left int
	if err := db.DB.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE event_id LIKE 'new-%'`).Scan(&left); err != nil || left != 3 {
		t.Fatalf("recent entries left: %d (%v), want 3", left, err)
	}
	if n, err := prune.Once(ctx, db.DB, rules, now); err != nil || len(n) != 0 {
		t.Fatalf("second round: %v %v, want nothing", n, err)
	}
}
