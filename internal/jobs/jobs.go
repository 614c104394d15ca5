// Package jobs runs the workers of a queue kept in a service's own table:
// payments to charge, notifications to send. The table's rows carry when
// they are next due; a worker claims one due row at a time (FOR UPDATE
// SKIP LOCKED, so replicas share the queue), leases it past the job's
// timeout and does the job outside any transaction. That claim is the
// caller's; this package runs the loop around it and wakes it.
//
// Waking: a trigger on the table (jobs_notify, in the platform migrations)
// sends a NOTIFY on the queue's channel when a row becomes due, and idle
// workers start at once instead of at their next poll. Polling stays as
// the safety net and for rows that come due later (retries with backoff),
// which no statement announces.
package jobs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/pause"
)

// Options tune a queue's workers.
type Options struct {
	// Workers is how many jobs run at a time in this process; default 4.
	Workers int
	// Poll is how often an idle worker looks for due rows without being
	// woken; default 1s.
	Poll time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Next claims one due job, does it and reports whether there was one. It
// should finish a claimed job even when ctx is cancelled midway (a lease
// expiring is the recovery for crashes, not for shutdowns).
type Next func(ctx context.Context) (bool, error)

// Run calls next from opts.Workers goroutines until ctx is cancelled, then
// waits for the jobs in flight and returns nil. channel is the NOTIFY
// channel of the queue's trigger.
func Run(ctx context.Context, db *bun.DB, channel string, opts Options, next Next) error {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("queue", channel)
	bell := newBell()
	var wg sync.WaitGroup
	wg.Go(func() { listen(ctx, db.DB, channel, bell, log) })
	for range opts.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				// Take the bell before looking, so a row that becomes due
				// while we claim still wakes us.
				rung := bell.wait()
				worked, err := next(ctx)
				if worked && err == nil {
					continue
				}
				wait := opts.Poll
				if err != nil && ctx.Err() == nil {
					log.Warn("job failed", "err", err)
					wait = max(wait, time.Second) // don't spin on a broken database
				}
				t := time.NewTimer(wait)
				select {
				case <-rung:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
		})
	}
	wg.Wait()
	return nil
}

// A bell wakes every waiting worker at once: one NOTIFY may stand for
// several due rows (Postgres folds a transaction's identical notifications
// into one), and the workers that find nothing simply wait again.
type bell struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBell() *bell { return &bell{ch: make(chan struct{})} }

func (b *bell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *bell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// listen rings the bell at every notification on channel until ctx is
// cancelled. It holds one of the pool's connections for the LISTEN and
// reconnects after failures; meanwhile the workers poll.
func listen(ctx context.Context, db *sql.DB, channel string, b *bell, log *slog.Logger) {
	for attempt := 0; ; attempt++ {
		err := listenOnce(ctx, db, channel, b)
		if ctx.Err() != nil {
			return
		}
		wait := Backoff(attempt+1, 200*time.Millisecond, 10*time.Second)
		log.Warn("job queue lost its notification listener, reconnecting", "err", err, "retry_in", wait)
		if !pause.For(ctx, wait) {
			return
		}
	}
}

func listenOnce(ctx context.Context, db *sql.DB, channel string, b *bell) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("jobs: the database driver is %T, not pgx", dc)
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, "LISTEN "+quote(channel)); err != nil {
			return badConn(err)
		}
		// Rows that became due before LISTEN took effect are the polls' job;
		// ring once so they are not left waiting for one.
		b.ring()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				if ctx.Err() != nil {
					return badConn(ctx.Err()) // still listening: not for reuse
				}
				return badConn(err)
			}
			b.ring()
		}
	})
}

// badConn makes database/sql discard the connection instead of returning
// it to the pool (a LISTENing or broken connection must not serve queries).
func badConn(err error) error { return errors.Join(driver.ErrBadConn, err) }

func quote(ident string) string { return `"` + ident + `"` }

// Backoff is the wait after the attempt-th failure: doubling from initial
// up to ceiling, then drawn between half and all of that, so jobs that
// failed together do not retry together.
func Backoff(attempt int, initial, ceiling time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}
