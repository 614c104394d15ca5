// Package inboxtest hands events to a service's registered handlers
// without Kafka, for tests of what the handlers do.
package inboxtest

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
)

// Deliver runs the handler that h has for msg's type in a transaction of
// db, as the consumer does for an event it has not seen, under event id
// (a new one when empty). The inbox's claim is skipped, so a test may hand
// over the same id twice and see what the handler alone makes of it.
func Deliver(db *bun.DB, h *inbox.Handlers, id string, msg proto.Message) error {
	if id == "" {
		id = events.NewID()
	}
	meta := events.Meta{ID: id, Time: time.Now()}
	return db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		return h.Deliver(ctx, tx, meta, msg)
	})
}
