package inbox_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/testkit/testrun"
)

var topic = events.Topic("product")

// env is one test's world: its own database, broker and consumer group.
type env struct {
	t       *testing.T
	db      *pgtest.Database
	cluster kafka.Cluster
	cl      *kgo.Client
	group   string
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t)
	// A read model whose handlers are deliberately not idempotent: every
	// application bumps "applied", so a double application shows.
	if _, err := db.DB.Exec(`CREATE TABLE products (id text PRIMARY KEY, name text NOT NULL, applied int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, 3, topic); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, cluster: cluster, cl: cl, group: "test-" + db.Name}
}

// start runs a consumer until the test ends (or the returned stop is
// called, which waits for Run to return).
func (e *env) start(opts inbox.Options, register func(*inbox.Handlers)) (stop func()) {
	e.t.Helper()
	opts.InitialBackoff, opts.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(e.t.Output(), nil)) // shown on failure
	// A fetch in flight when a partition gets assigned long-polls for up to
	// FetchMaxWait before the partition is fetched; keep tests quick.
	opts.ClientOpts = append(opts.ClientOpts, kgo.FetchMaxWait(250*time.Millisecond))
	var h inbox.Handlers
	register(&h)
	c, err := inbox.New(e.db.DB, e.cluster, e.group, []string{topic}, &h, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return testrun.Background(e.t, c.Run)
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	kafkatest.Produce(e.t, e.cl, recs...)
}

func (e *env) product(id string) (name string, applied int) {
	e.t.Helper()
	err := e.db.DB.QueryRow(`SELECT name, applied FROM products WHERE id = ?`, id).Scan(&name, &applied)
	if err != nil {
		e.t.Fatalf("product %s: %v", id, err)
	}
	return name, applied
}

// handled reads mart_inbox_handled_total for this group.
func (e *env) handled(msg proto.Message, outcome string) float64 {
	return testrun.Counter(e.t, "mart_inbox_handled_total", map[string]string{
		"consumer": e.group, "type": events.TypeOf(msg), "outcome": outcome})
}

// event is a product event about key with a new id.
func event(t *testing.T, key string, msg proto.Message) *kgo.Record {
	t.Helper()
	return kafkatest.Record(t, "product", key, msg)
}

func created(id, name string) *productv1.ProductCreated {
	return &productv1.ProductCreated{Product: &productv1.Product{Id: id, Name: name}}
}

func onCreated(ctx context.Context, tx bun.Tx, _ events.Meta, m *productv1.ProductCreated) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO products (id, name, applied) VALUES (?, ?, 1)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, applied = products.applied + 1`,
		m.GetProduct().GetId(), m.GetProduct().GetName())
	return err
}

func onUpdated(ctx context.Context, tx bun.Tx, _ events.Meta, m *productv1.ProductUpdated) error {
	_, err := tx.ExecContext(ctx, `UPDATE products SET name = ?, applied = applied + 1 WHERE id = ?`,
		m.GetProduct().GetName(), m.GetProduct().GetId())
	return err
}

func TestDuplicateEventChangesStateOnce(t *testing.T) {
	e := newEnv(t)
	e.start(inbox.Options{}, func(h *inbox.Handlers) {
		inbox.Handle(h, onCreated)
		inbox.Handle(h, onUpdated)
	})

	first := event(t, "p1", created("p1", "Lamp"))
	e.produce(first, first) // the same ce_id twice, as after a relay crash
	e.produce(event(t, "p1", &productv1.ProductUpdated{Product: &productv1.Product{Id: "p1", Name: "Desk lamp"}}))

	testrun.WaitFor(t, "the update to be handled", func() bool {
		return e.handled(&productv1.ProductUpdated{}, inbox.OutcomeHandled) == 1
	})
	if got := e.handled(&productv1.ProductCreated{}, inbox.OutcomeDuplicate); got != 1 {
		t.Errorf("duplicates counted = %v, want 1", got)
	}
	if name, applied := e.product("p1"); name != "Desk lamp" || applied != 2 {
		t.Errorf("product p1 = %q applied %d times, want \"Desk lamp\" applied 2 times (created once, updated once)", name, applied)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM inbox WHERE consumer = ?`, e.group); n != 2 {
		t.Errorf("inbox rows = %d, want 2", n)
	}
}

func TestPoisonRecordsAreDeadLetteredAndConsumerMovesOn(t *testing.T) {
	e := newEnv(t)
	stop := e.start(inbox.Options{}, func(h *inbox.Handlers) { inbox.Handle(h, onCreated) })

	garbage := event(t, "p1", created("p1", "x"))
	garbage.Value = []byte("this is not protobuf \xff\xff\xff")
	unknown := event(t, "p1", created("p1", "x"))
	for i, h := range unknown.Headers {
		if h.Key == events.HeaderType {
			unknown.Headers[i].Value = []byte("mart.product.v1.ProductTeleported")
		}
	}
	// Same key, so all land on one partition, in this order.
	e.produce(garbage, unknown,
		event(t, "p1", &productv1.ProductArchived{ProductId: "p1"}), // known type without handler: skipped
		event(t, "p1", created("p1", "Lamp")))

	testrun.WaitFor(t, "the good record to be applied", func() bool {
		return e.db.Count(e.t, `SELECT count(*) FROM products WHERE id = 'p1'`) == 1
	})
	dlq := events.DLQTopic(e.group)
	testrun.WaitFor(t, "two records in "+dlq, func() bool { return kafkatest.Count(t, e.cluster, dlq) == 2 })

	for i, want := range []*kgo.Record{garbage, unknown} {
		got := kafkatest.ReadTopic(t, e.cluster, dlq)[i]
		h := headers(got)
		if string(got.Key) != "p1" || string(got.Value) != string(want.Value) {
			t.Errorf("dlq[%d]: key/value not preserved", i)
		}
		if id, _ := headerValue(want, events.HeaderID); h[events.HeaderID] != id {
			t.Errorf("dlq[%d]: ce_id = %q, want the original %q", i, h[events.HeaderID], id)
		}
		if !strings.Contains(h[inbox.HeaderDLQError], "malformed") {
			t.Errorf("dlq[%d]: %s = %q, want a decode error", i, inbox.HeaderDLQError, h[inbox.HeaderDLQError])
		}
		if h[inbox.HeaderDLQTopic] != topic || h[inbox.HeaderDLQConsumer] != e.group ||
			h[inbox.HeaderDLQPartition] != strconv.Itoa(int(want.Partition)) ||
			h[inbox.HeaderDLQOffset] != strconv.FormatInt(want.Offset, 10) {
			t.Errorf("dlq[%d]: origin headers %v, want topic %s partition %d offset %d consumer %s",
				i, h, topic, want.Partition, want.Offset, e.group)
		}
	}
	if got := e.handled(&productv1.ProductArchived{}, inbox.OutcomeUnhandled); got != 1 {
		t.Errorf("unhandled ProductArchived counted %v times, want 1", got)
	}
	if got := testrun.Counter(t, "mart_inbox_dead_lettered_total", map[string]string{"consumer": e.group, "reason": "malformed"}); got != 2 {
		t.Errorf("dead-lettered counted %v, want 2", got)
	}

	// After shutdown the group's committed offset is past all four records.
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(e.cl).FetchOffsets(ctx, e.group)
	if err != nil {
		t.Fatal(err)
	}
	committed, _ := offsets.Lookup(topic, garbage.Partition)
	if committed.At != garbage.Offset+4 {
		t.Errorf("committed offset = %d, want %d", committed.At, garbage.Offset+4)
	}
}

func TestFailingHandlerIsRetriedAndAppliedOnce(t *testing.T) {
	e := newEnv(t)
	var attempts atomic.Int32
	e.start(inbox.Options{MaxAttempts: 5}, func(h *inbox.Handlers) {
		inbox.Handle(h, func(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductCreated) error {
			// Write first, then fail: a failed attempt must leave nothing.
			if err := onCreated(ctx, tx, meta, m); err != nil {
				return err
			}
			if attempts.Add(1) <= 2 {
				return errors.New("database of a friend is down")
			}
			return nil
		})
	})
	e.produce(event(t, "p1", created("p1", "Lamp")))

	testrun.WaitFor(t, "the event to be handled", func() bool {
		return e.handled(&productv1.ProductCreated{}, inbox.OutcomeHandled) == 1
	})
	if n := attempts.Load(); n != 3 {
		t.Errorf("handler attempts = %d, want 3", n)
	}
	if _, applied := e.product("p1"); applied != 1 {
		t.Errorf("product applied %d times, want 1", applied)
	}
	if n := kafkatest.Count(t, e.cluster, events.DLQTopic(e.group)); n != 0 {
		t.Errorf("%d records dead-lettered, want none", n)
	}
}

func TestAlwaysFailingHandlerIsDeadLetteredAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	var attempts atomic.Int32
	e.start(inbox.Options{MaxAttempts: 3}, func(h *inbox.Handlers) {
		inbox.Handle(h, onCreated)
		inbox.Handle(h, func(context.Context, bun.Tx, events.Meta, *productv1.ProductArchived) error {
			attempts.Add(1)
			return errors.New("boom")
		})
	})
	bad := event(t, "p1", &productv1.ProductArchived{ProductId: "p1"})
	e.produce(bad, event(t, "p1", created("p1", "Lamp")))

	testrun.WaitFor(t, "the record after the failing one to be applied", func() bool {
		return e.db.Count(e.t, `SELECT count(*) FROM products WHERE id = 'p1'`) == 1
	})
	if n := attempts.Load(); n != 3 {
		t.Errorf("handler attempts = %d, want 3", n)
	}
	dlq := events.DLQTopic(e.group)
	testrun.WaitFor(t, "one record in "+dlq, func() bool { return kafkatest.Count(t, e.cluster, dlq) == 1 })
	got := kafkatest.ReadTopic(t, e.cluster, dlq)[0]
	h := headers(got)
	if id, _ := headerValue(bad, events.HeaderID); h[events.HeaderID] != id {
		t.Errorf("dead-lettered ce_id = %q, want %q", h[events.HeaderID], id)
	}
	if msg := h[inbox.HeaderDLQError]; !strings.Contains(msg, "boom") || !strings.Contains(msg, "3 attempts") {
		t.Errorf("%s = %q, want the handler error and attempt count", inbox.HeaderDLQError, msg)
	}
	// Not marked handled: replaying it from the DLQ later will apply it.
	if id, _ := headerValue(bad, events.HeaderID); e.db.Count(e.t, `SELECT count(*) FROM inbox WHERE event_id = ?`, id) != 0 {
		t.Error("dead-lettered event is recorded in the inbox")
	}
}

func TestShutdownFinishesInFlightHandlerAndCommits(t *testing.T) {
	e := newEnv(t)
	entered, release := make(chan struct{}), make(chan struct{})
	stop := e.start(inbox.Options{}, func(h *inbox.Handlers) {
		inbox.Handle(h, func(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductCreated) error {
			close(entered)
			<-release
			return onCreated(ctx, tx, meta, m)
		})
	})
	e.produce(event(t, "p1", created("p1", "Lamp")))

	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never called")
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(release) // let the in-flight handler finish after shutdown began
	<-stopped

	if _, applied := e.product("p1"); applied != 1 {
		t.Errorf("product applied %d times, want 1", applied)
	}
	// A new member of the group starts after the committed event.
	var calls atomic.Int32
	e.start(inbox.Options{}, func(h *inbox.Handlers) {
		inbox.Handle(h, func(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductCreated) error {
			calls.Add(1)
			return onCreated(ctx, tx, meta, m)
		})
	})
	e.produce(event(t, "p2", created("p2", "Chair")))
	testrun.WaitFor(t, "the next event to be handled", func() bool {
		return e.db.Count(e.t, `SELECT count(*) FROM products WHERE id = 'p2'`) == 1
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("restarted consumer was handed %d events, want only the new one", n)
	}
}

func headers(r *kgo.Record) map[string]string {
	m := make(map[string]string)
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func headerValue(r *kgo.Record, key string) (string, bool) {
	v, ok := headers(r)[key]
	return v, ok
}
