// Package prune deletes the rows a service keeps only for a while — inbox
// entries, expired sessions, stale counters — so no table grows without
// bound in a shop that runs for years (or under an attack that writes one
// row per request). Every service runs one Pruner with the platform's
// rules and its own.
package prune

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/uptrace/bun"
)

// Rule says which rows of a table have served their purpose.
type Rule struct {
	// Table is the table to prune.
	Table string
	// Where selects the rows to delete; ?0 is the cutoff, now − Keep. The
	// condition should be served by an index, or the table be small.
	Where string
	// Keep is how long a row stays after what Where measures.
	Keep time.Duration
}

// batch bounds one DELETE: short transactions hold no long locks and
// leave room to the service's own work.
const batch = 5000

var pruned = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "mart_pruned_rows_total",
	Help: "Rows deleted because their retention ended, by table.",
}, []string{"table"})

// Pruner applies its rules every Interval; run it as a service worker.
type Pruner struct {
	DB       *bun.DB
	Rules    []Rule
	Interval time.Duration
	Logger   *slog.Logger
}

// Run prunes once right away, then every Interval, until ctx ends; then it
// returns nil. A failed round is logged and retried at the next tick:
// pruning is never urgent enough to stop a service.
func (p *Pruner) Run(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		n, err := Once(ctx, p.DB, p.Rules, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			p.Logger.Warn("prune", "err", err)
		case len(n) > 0:
			p.Logger.Info("pruned", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once deletes what every rule selects at now, in batches, and returns
// the rows deleted per table (tables with none are left out).
func Once(ctx context.Context, db bun.IDB, rules []Rule, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	for _, r := range rules {
		cutoff := now.Add(-r.Keep)
		for {
			// ctid picks the batch's rows without needing a key.
			res, err := db.NewRaw(fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid IN (SELECT ctid FROM %[1]s WHERE %[2]s LIMIT %[3]d)`,
				r.Table, r.Where, batch), cutoff).Exec(ctx)
			if err != nil {
				return out, fmt.Errorf("prune %s: %w", r.Table, err)
			}
			n, _ := res.RowsAffected()
			if n > 0 {
				out[r.Table] += n
				pruned.WithLabelValues(r.Table).Add(float64(n))
			}
			if n < batch {
				break
			}
		}
	}
	return out, nil
}
