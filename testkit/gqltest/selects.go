package gqltest

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/uptrace/bun"
)

// CountSelects returns a copy of db that counts the SELECT statements it
// runs that name table (quoted, as bun writes it), and the count: how
// tests see that a batch of entities is resolved in one query. The store
// under test is built on the copy; db itself counts nothing.
func CountSelects(db *bun.DB, table string) (*bun.DB, *atomic.Int64) {
	h := &selectCounter{table: `"` + table + `"`}
	return db.WithQueryHook(h), &h.n
}

type selectCounter struct {
	table string
	n     atomic.Int64
}

func (c *selectCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *selectCounter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "SELECT") && strings.Contains(e.Query, c.table) {
		c.n.Add(1)
	}
}
