package gqltest

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/uptrace/bun"
)

// CountSelects counts, from now on, the SELECT statements db runs that
// name table (quoted, as bun writes it): how tests see that a batch of
// entities is resolved in one query.
func CountSelects(db *bun.DB, table string) *atomic.Int64 {
	h := &selectCounter{table: `"` + table + `"`}
	db.AddQueryHook(h)
	return &h.n
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
