// Package outbox implements the transactional outbox: a service writes an
// event into its own database in the transaction that makes the change, and
// a Relay publishes committed events to Kafka, in order, deleting each one
// only after the broker acknowledged it. Nothing is published for a change
// that rolled back and nothing is lost for one that committed; a crash
// between publish and delete republishes, which consumers absorb (inbox).
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
)

// row is one pending event in the outbox table.
type row struct {
	bun.BaseModel `bun:"table:outbox"`

	Seq         int64     `bun:"seq,pk,autoincrement"`
	EventID     string    `bun:"event_id,type:uuid"`
	Topic       string    `bun:"topic"`
	Key         string    `bun:"key"`
	Type        string    `bun:"type"`
	Source      string    `bun:"source"`
	Payload     []byte    `bun:"payload"`
	Traceparent string    `bun:"traceparent"`
	CreatedAt   time.Time `bun:"created_at"`
}

// Writer adds a service's events to its outbox. Build one with NewWriter.
type Writer struct {
	Topic  string // where the relay publishes, e.g. "product.events.v1"
	Source string // ce_source, e.g. "mart/product"
	// Types are the event types the service declares it publishes; Add
	// refuses any other, so the declaration cannot fall behind the code.
	Types map[string]bool
}

// NewWriter returns the Writer of a service that publishes the event
// types of publishes (typed nils will do): its events go to the service's
// topic with the service as source.
func NewWriter(service string, publishes []proto.Message) Writer {
	types := map[string]bool{}
	for _, name := range events.Names(publishes) {
		types[name] = true
	}
	return Writer{Topic: events.Topic(service), Source: events.Source(service), Types: types}
}

// Add stores msg as an event about aggregate key. Pass the transaction that
// makes the change the event describes, so both commit or neither does. To
// keep one aggregate's events in commit order, change (and so lock) the
// aggregate's row before calling Add in that transaction.
//
// The traceparent carried by ctx (events.WithTraceparent) travels along.
func (w Writer) Add(ctx context.Context, db bun.IDB, key string, msg proto.Message) error {
	// A row Kafka can never accept would stall the relay behind it.
	if w.Topic == "" || w.Source == "" || key == "" {
		return fmt.Errorf("outbox: topic, source and key are required (topic %q, source %q, key %q)", w.Topic, w.Source, key)
	}
	if typ := events.TypeOf(msg); !w.Types[typ] {
		return fmt.Errorf("outbox: %s is not an event type %s declares it publishes", typ, w.Source)
	}
	payload, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("outbox: marshal %s: %w", events.TypeOf(msg), err)
	}
	r := &row{
		EventID:     events.NewID(),
		Topic:       w.Topic,
		Key:         key,
		Type:        events.TypeOf(msg),
		Source:      w.Source,
		Payload:     payload,
		Traceparent: events.TraceparentFrom(ctx),
		CreatedAt:   time.Now(),
	}
	if _, err := db.NewInsert().Model(r).Exec(ctx); err != nil {
		return fmt.Errorf("outbox: add %s: %w", r.Type, err)
	}
	return nil
}
