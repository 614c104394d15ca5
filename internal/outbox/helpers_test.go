package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// advisoryLocks counts the advisory locks held in the test database: the
// relay lock is the only one once migrations are done.
func (e *env) advisoryLocks() int {
	e.t.Helper()
	var n int
	err := e.db.DB.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// committed returns the sum of group's committed offsets on topic.
func committed(t *testing.T, adm *kadm.Client, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0 // e.g. the group has not committed yet
	}
	var sum int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}
