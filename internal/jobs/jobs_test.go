package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// newQueue makes a table shaped like the services' queues, with the
// platform trigger, and returns the database and a Next that does each due
// job by stamping done_at. hold, when set, runs between claim and done.
func newQueue(t *testing.T, hold func()) (*pgtest.Database, jobs.Next) {
	t.Helper()
	db := pgtest.New(t)
	for _, stmt := range []string{
		`CREATE TABLE tasks (id serial PRIMARY KEY, next_attempt_at timestamptz, done_at timestamptz)`,
		`CREATE TRIGGER tasks_due AFTER INSERT OR UPDATE OF next_attempt_at ON tasks
			FOR EACH ROW EXECUTE FUNCTION jobs_notify('tasks')`,
	} {
		if _, err := db.DB.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	next := func(ctx context.Context) (bool, error) {
		var id int
		err := db.DB.QueryRowContext(ctx, `UPDATE tasks SET next_attempt_at = now() + interval '1 minute'
			WHERE id = (SELECT id FROM tasks WHERE next_attempt_at <= now()
				ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING id`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if hold != nil {
			hold()
		}
		_, err = db.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE tasks SET next_attempt_at = NULL, done_at = now() WHERE id = ?`, id)
		return true, err
	}
	return db, next
}

// An hour's poll: whatever runs within the test's time ran because the
// trigger woke the workers.
var noPolling = jobs.Options{Workers: 2, Poll: time.Hour}

func TestDueRowsWakeIdleWorkers(t *testing.T) {
	db, next := newQueue(t, nil)
	testrun.Background(t, func(ctx context.Context) error { return jobs.Run(ctx, db.DB, "tasks", noPolling, next) })
	waitListening(t, db, 0)

	// One transaction with three due rows sends one notification; all
	// three must still be done.
	if _, err := db.DB.Exec(`INSERT INTO tasks (next_attempt_at) SELECT now() FROM generate_series(1, 3)`); err != nil {
		t.Fatal(err)
	}
	testrun.WaitFor(t, "the due rows to be done", func() bool {
		return db.Count(t, `SELECT count(*) FROM tasks WHERE done_at IS NOT NULL`) == 3
	})
	// A row due later is announced by nobody: it waits for a poll.
	if _, err := db.DB.Exec(`INSERT INTO tasks (next_attempt_at) VALUES (now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := db.Count(t, `SELECT count(*) FROM tasks WHERE done_at IS NOT NULL`); n != 3 {
		t.Errorf("%d rows done, want 3: a row due in an hour ran", n)
	}
}

func TestPollingFindsRowsThatCameDueLater(t *testing.T) {
	db, next := newQueue(t, nil)
	testrun.Background(t, func(ctx context.Context) error {
		return jobs.Run(ctx, db.DB, "tasks", jobs.Options{Workers: 1, Poll: 20 * time.Millisecond}, next)
	})
	if _, err := db.DB.Exec(`INSERT INTO tasks (next_attempt_at) VALUES (clock_timestamp() + interval '100 milliseconds')`); err != nil {
		t.Fatal(err)
	}
	testrun.WaitFor(t, "the row to be done once due", func() bool {
		return db.Count(t, `SELECT count(*) FROM tasks WHERE done_at IS NOT NULL`) == 1
	})
}

func TestListenerReconnects(t *testing.T) {
	db, next := newQueue(t, nil)
	testrun.Background(t, func(ctx context.Context) error { return jobs.Run(ctx, db.DB, "tasks", noPolling, next) })
	first := waitListening(t, db, 0)
	if _, err := db.DB.Exec(`SELECT pg_terminate_backend(?)`, first); err != nil {
		t.Fatal(err)
	}
	waitListening(t, db, first)
	if _, err := db.DB.Exec(`INSERT INTO tasks (next_attempt_at) VALUES (now())`); err != nil {
		t.Fatal(err)
	}
	testrun.WaitFor(t, "the row to be done after the listener came back", func() bool {
		return db.Count(t, `SELECT count(*) FROM tasks WHERE done_at IS NOT NULL`) == 1
	})
}

func TestShutdownFinishesJobsInFlight(t *testing.T) {
	started := make(chan struct{})
	db, next := newQueue(t, func() {
		close(started)
		time.Sleep(200 * time.Millisecond)
	})
	stop := testrun.Background(t, func(ctx context.Context) error { return jobs.Run(ctx, db.DB, "tasks", noPolling, next) })
	if _, err := db.DB.Exec(`INSERT INTO tasks (next_attempt_at) VALUES (now())`); err != nil {
		t.Fatal(err)
	}
	<-started
	stop()
	if n := db.Count(t, `SELECT count(*) FROM tasks WHERE done_at IS NOT NULL`); n != 1 {
		t.Errorf("%d rows done after Run returned, want the one in flight", n)
	}
}

func TestBackoffDoublesWithinBounds(t *testing.T) {
	for _, c := range []struct {
		attempt int
		want    time.Duration // the bound before jitter
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {10, 10 * time.Second}} {
		for range 50 {
			got := jobs.Backoff(c.attempt, time.Second, 10*time.Second)
			if got < c.want/2 || got > c.want {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", c.attempt, got, c.want/2, c.want)
			}
		}
	}
}

// waitListening waits until a backend other than not LISTENs on the
// database and returns its pid.
func waitListening(t *testing.T, db *pgtest.Database, not int) int {
	t.Helper()
	var pid int
	testrun.WaitFor(t, "a worker to LISTEN", func() bool {
		err := db.DB.QueryRow(`SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> ?`, not).Scan(&pid)
		return err == nil
	})
	return pid
}
