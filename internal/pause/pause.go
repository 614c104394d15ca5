// Package pause is the wait every background loop makes between polls and
// retries: for a while, or until it is told to stop.
package pause

import (
	"context"
	"time"
)

// For waits d or until ctx is done, whichever comes first; it reports
// whether d elapsed, so that a loop can stop when it did not.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
