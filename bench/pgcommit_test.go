package bench

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

// Connections committing at once in commitCeiling, as pgbench -c 16.
const commitClients = 16

// commitDuration is 5s (2s with -short), or MART_BENCH_COMMIT (a Go duration, e.g. 2s).
func commitDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MART_BENCH_COMMIT")); err == nil && d > 0 {
		return d
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 5 * time.Second
}

// commitCeiling is a Go pgbench: commitClients connections each commit a
// one-row INSERT in its own transaction, as fast as they can, into a
// fresh database of their own for commitDuration; it returns commits/s.
// Every saga step is such a small write transaction (a change plus its
// outbox or inbox row), so this is the most the machine's Postgres can do.
func commitCeiling(b *testing.B) float64 {
	b.Helper()
	d := pgtest.New(b)
	db, err := sql.Open("pgx", d.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(commitClients)
	db.SetMaxIdleConns(commitClients)
	if _, err := db.Exec(`CREATE TABLE bench_commit (id bigserial PRIMARY KEY, client int NOT NULL, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitDuration())
	defer cancel()
	var commits atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for c := range commitClients {
		wg.Go(func() {
			for ctx.Err() == nil {
				tx, err := db.BeginTx(context.Background(), nil)
				if err == nil {
					_, err = tx.Exec(`INSERT INTO bench_commit (client) VALUES ($1)`, c)
					if err == nil {
						err = tx.Commit()
					} else {
						_ = tx.Rollback()
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				commits.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("commit ceiling: %v", firstErr)
	}
	return float64(commits.Load()) / time.Since(start).Seconds()
}
