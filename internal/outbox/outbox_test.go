package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/testkit/testrun"
)

var (
	writer = outbox.NewWriter("product", []proto.Message{(*productv1.ProductCreated)(nil), (*productv1.ProductUpdated)(nil)})
	topic  = events.Topic("product")
)

// env is a producing service's database plus a broker.
type env struct {
	t       *testing.T
	db      *pgtest.Database
	cluster kafka.Cluster
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t)
	if _, err := db.DB.Exec(`CREATE TABLE products (id text PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, cluster: kafkatest.Start(t)}
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.t.Output(), nil)) // shown on failure
}

// relay starts a relay until the test ends or stop is called; stop waits
// for Run to return.
func (e *env) relay(opts outbox.Options, afterPublish func(n int) error) (stop func()) {
	e.t.Helper()
	return e.relayWith(context.Background(), kafkatest.Client(e.t, e.cluster), opts, afterPublish)
}

func (e *env) relayWith(ctx context.Context, cl *kgo.Client, opts outbox.Options, afterPublish func(n int) error) (stop func()) {
	e.t.Helper()
	if opts.LockRetry == 0 {
		opts.LockRetry = 50 * time.Millisecond
	}
	opts.Logger = e.logger()
	r, err := outbox.NewRelay(e.db.DB, e.db.URL, cl, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if afterPublish != nil {
		outbox.SetAfterPublish(r, afterPublish)
	}
	// The relay stops when the test stops it or when ctx ends (a crash).
	return testrun.Background(e.t, func(runCtx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer context.AfterFunc(runCtx, cancel)()
		return r.Run(ctx)
	})
}

// change saves a product and its event in one transaction, as a service
// does, committing unless rollback.
func (e *env) change(ctx context.Context, id string, msg proto.Message, rollback bool) {
	e.t.Helper()
	errRollback := errors.New("rollback")
	err := e.db.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO products (id, name) VALUES (?, 'x')
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name`, id); err != nil {
			return err
		}
		if err := writer.Add(ctx, tx, id, msg); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback && errors.Is(err, errRollback) {
		return
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pending() int {
	e.t.Helper()
	var n int
	if err := e.db.DB.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) waitDrained() {
	e.t.Helper()
	testrun.WaitFor(e.t, "the outbox to be empty", func() bool { return e.pending() == 0 })
}

func (e *env) published() []decoded {
	e.t.Helper()
	var out []decoded
	for _, r := range kafkatest.ReadTopic(e.t, e.cluster, topic) {
		meta, msg, err := events.Decode(r)
		if err != nil {
			e.t.Fatalf("published record does not decode: %v", err)
		}
		out = append(out, decoded{meta, msg})
	}
	return out
}

type decoded struct {
	meta events.Meta
	msg  proto.Message
}

func created(id, name string) *productv1.ProductCreated {
	return &productv1.ProductCreated{Product: &productv1.Product{Id: id, Name: name}}
}

func TestRolledBackChangePublishesNothing(t *testing.T) {
	e := newEnv(t)
	e.relay(outbox.Options{}, nil)
	ctx := context.Background()

	e.change(ctx, "p1", created("p1", "rolled back"), true)
	e.change(ctx, "p2", created("p2", "committed"), false)
	e.waitDrained()

	got := e.published()
	if len(got) != 1 || got[0].meta.Key != "p2" {
		t.Fatalf("published %d events %v, want only the committed p2", len(got), got)
	}
}

func TestCommittedChangeIsPublishedOnceWithEnvelope(t *testing.T) {
	e := newEnv(t)
	// An hour between polls: only the insert trigger's NOTIFY can wake the
	// relay in time, so this also proves LISTEN/NOTIFY works.
	e.relay(outbox.Options{PollInterval: time.Hour}, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := events.WithTraceparent(context.Background(), tp)
	before := time.Now()

	testrun.WaitFor(t, "the relay to hold its lock", func() bool { return e.advisoryLocks() == 1 })
	msg := created("p1", "Lamp")
	e.change(ctx, "p1", msg, false)
	testrun.WaitFor(t, "the event to be published", func() bool { return kafkatest.Count(t, e.cluster, topic) == 1 })
	e.waitDrained()

	got := e.published()
	if len(got) != 1 {
		t.Fatalf("published %d events, want 1", len(got))
	}
	m := got[0].meta
	if u, err := uuid.Parse(m.ID); err != nil || u.Version() != 7 {
		t.Errorf("ce_id %q is not a UUIDv7", m.ID)
	}
	if m.Type != "mart.product.v1.ProductCreated" || m.Source != "mart/product" || m.Key != "p1" || m.Traceparent != tp {
		t.Errorf("meta = %+v", m)
	}
	if m.Time.Before(before.Add(-time.Second)) || m.Time.After(time.Now()) {
		t.Errorf("ce_time %v is not the time of the change", m.Time)
	}
	if !proto.Equal(got[0].msg, msg) {
		t.Errorf("payload = %v, want %v", got[0].msg, msg)
	}
}

func TestPollingPublishesWithoutNotifications(t *testing.T) {
	e := newEnv(t)
	if _, err := e.db.DB.Exec(`DROP TRIGGER outbox_notify ON outbox`); err != nil {
		t.Fatal(err)
	}
	e.relay(outbox.Options{PollInterval: 50 * time.Millisecond}, nil)
	testrun.WaitFor(t, "the relay to hold its lock", func() bool { return e.advisoryLocks() == 1 })

	e.change(context.Background(), "p1", created("p1", "Lamp"), false)
	e.waitDrained()
	if n := kafkatest.Count(t, e.cluster, topic); n != 1 {
		t.Fatalf("published %d events, want 1", n)
	}
}

func TestCrashBetweenPublishAndDeleteIsAbsorbedByInbox(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// The first relay dies right after the broker acknowledged the batch.
	crashed := make(chan struct{})
	firstCtx, kill := context.WithCancel(ctx)
	stopFirst := e.relayWith(firstCtx, kafkatest.Client(t, e.cluster), outbox.Options{}, func(int) error {
		kill()
		close(crashed)
		return errors.New("killed before delete")
	})
	e.change(ctx, "p1", created("p1", "Lamp"), false)
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the first relay never published")
	}
	stopFirst()
	if n := e.pending(); n != 1 {
		t.Fatalf("outbox holds %d events after the crash, want 1 (published, not deleted)", n)
	}

	// Its successor publishes the same event again.
	e.relay(outbox.Options{}, nil)
	e.waitDrained()
	got := e.published()
	if len(got) != 2 || got[0].meta.ID != got[1].meta.ID {
		t.Fatalf("published %d records, want the same event twice", len(got))
	}

	// A consumer with a non-idempotent handler applies it once.
	consumerDB := pgtest.New(t)
	if _, err := consumerDB.DB.Exec(`CREATE TABLE catalog (id text PRIMARY KEY, applied int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	group := "test-" + consumerDB.Name
	var calls atomic.Int32
	var h inbox.Handlers
	inbox.Handle(&h, func(ctx context.Context, tx bun.Tx, _ events.Meta, m *productv1.ProductCreated) error {
		calls.Add(1)
		_, err := tx.ExecContext(ctx, `INSERT INTO catalog (id, applied) VALUES (?, 1)
			ON CONFLICT (id) DO UPDATE SET applied = catalog.applied + 1`, m.GetProduct().GetId())
		return err
	})
	c, err := inbox.New(consumerDB.DB, e.cluster, group, []string{topic}, &h, inbox.Options{Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()

	adm := kadm.NewClient(kafkatest.Client(t, e.cluster))
	testrun.WaitFor(t, "the group to commit past both copies", func() bool {
		return committed(t, adm, group) == 2
	})
	var applied int
	if err := consumerDB.DB.QueryRow(`SELECT applied FROM catalog WHERE id = 'p1'`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 || calls.Load() != 1 {
		t.Fatalf("event applied %d times (handler called %d times), want once", applied, calls.Load())
	}
}

func TestEventsOfOneKeyArriveInOrder(t *testing.T) {
	e := newEnv(t)
	// Small batches, so order must hold across many produce round trips.
	e.relay(outbox.Options{BatchSize: 16}, nil)
	ctx := context.Background()

	const n = 200
	for i := 1; i <= n; i++ {
		e.change(ctx, "p1", &productv1.ProductUpdated{Product: &productv1.Product{
			Id: "p1", Price: &productv1.Money{Amount: int64(i), Currency: "EUR"}}}, false)
		if i%4 == 0 { // other products' events interleaved
			key := fmt.Sprintf("p%d", 2+i%5)
			e.change(ctx, key, created(key, "other"), false)
		}
	}
	e.waitDrained()

	var seq []int64
	partitions := map[int32]bool{}
	all := e.published()
	for _, d := range all {
		if d.meta.Key == "p1" {
			seq = append(seq, d.msg.(*productv1.ProductUpdated).GetProduct().GetPrice().GetAmount())
			partitions[d.meta.Partition] = true
		}
	}
	if len(all) != n+n/4 {
		t.Errorf("published %d events, want %d", len(all), n+n/4)
	}
	if len(partitions) != 1 {
		t.Errorf("p1's events spread over partitions %v, want one", partitions)
	}
	if len(seq) != n {
		t.Fatalf("got %d events of p1, want %d", len(seq), n)
	}
	for i, v := range seq {
		if v != int64(i+1) {
			t.Fatalf("p1 event #%d carries %d, want %d: order broken", i+1, v, i+1)
		}
	}
	if e.pending() != 0 {
		t.Error("outbox not empty after publishing")
	}
}

func TestOneActiveRelayAndStandbyTakesOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var byFirst, bySecond atomic.Int64
	stopFirst := e.relay(outbox.Options{}, func(n int) error { byFirst.Add(int64(n)); return nil })
	testrun.WaitFor(t, "the first relay to hold its lock", func() bool { return e.advisoryLocks() == 1 })
	e.relay(outbox.Options{}, func(n int) error { bySecond.Add(int64(n)); return nil })

	for i := range 20 {
		e.change(ctx, fmt.Sprintf("p%d", i), created("p", "x"), false)
	}
	e.waitDrained()
	if a, b := byFirst.Load(), bySecond.Load(); a != 20 || b != 0 {
		t.Fatalf("first relay published %d, second %d; want 20 and 0", a, b)
	}
	if n := e.advisoryLocks(); n != 1 {
		t.Fatalf("%d relay locks held, want 1", n)
	}

	stopFirst()
	for i := range 20 {
		e.change(ctx, fmt.Sprintf("q%d", i), created("q", "x"), false)
	}
	e.waitDrained() // only the standby can drain it now
	if a, b := byFirst.Load(), bySecond.Load(); a != 20 || b != 20 {
		t.Fatalf("first relay published %d, second %d; want 20 and 20", a, b)
	}
	if n := kafkatest.Count(t, e.cluster, topic); n != 40 {
		t.Fatalf("topic holds %d events, want 40: a clean handover publishes nothing twice", n)
	}
}

func TestRelayRecoversFromLostDatabaseConnection(t *testing.T) {
	e := newEnv(t)
	e.relay(outbox.Options{}, nil)
	testrun.WaitFor(t, "the relay to hold its lock", func() bool { return e.advisoryLocks() == 1 })

	// Kill the relay's own connection (the lock and LISTEN go with it).
	if _, err := e.db.DB.Exec(`SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	e.change(context.Background(), "p1", created("p1", "Lamp"), false)
	e.waitDrained()
	if n := kafkatest.Count(t, e.cluster, topic); n != 1 {
		t.Fatalf("published %d events, want 1", n)
	}
	testrun.WaitFor(t, "the relay to hold its lock again", func() bool { return e.advisoryLocks() == 1 })
}

func TestRelayRetriesUntilKafkaIsUp(t *testing.T) {
	db := pgtest.New(t)
	if _, err := db.DB.Exec(`CREATE TABLE products (id text PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// An address where no broker listens yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := &env{t: t, db: db, cluster: kafka.Cluster{Brokers: []string{addr}}}
	// Quick client-side timeouts and retries keep the test short.
	cl := kafkatest.Client(t, e.cluster, kgo.RecordDeliveryTimeout(time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	e.relayWith(context.Background(), cl, outbox.Options{}, nil)
	e.change(context.Background(), "p1", created("p1", "Lamp"), false)

	testrun.WaitFor(t, "a failed publish attempt", func() bool {
		return testrun.Counter(t, "mart_outbox_relay_errors_total", map[string]string{"database": db.Name}) >= 1
	})
	if e.pending() != 1 {
		t.Fatal("the event left the outbox while no broker was up")
	}
	broker, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	e.waitDrained()
	if got := e.published(); len(got) != 1 || got[0].meta.Key != "p1" {
		t.Fatalf("broker holds %v, want the p1 event", got)
	}
}

func TestAddRejectsWhatKafkaCannotTake(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if err := (outbox.Writer{}).Add(ctx, db.DB, "p1", created("p1", "x")); err == nil {
		t.Error("zero Writer accepted an event")
	}
	if err := writer.Add(ctx, db.DB, "", created("p1", "x")); err == nil {
		t.Error("event without key accepted")
	}
	err := writer.Add(ctx, db.DB, "p1", &productv1.ProductArchived{ProductId: "p1"})
	if err == nil || !strings.Contains(err.Error(), "mart.product.v1.ProductArchived is not an event type mart/product declares") {
		t.Errorf("an event type the writer was not told of: %v", err)
	}
	var n int
	if err := db.DB.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil || n != 0 {
		t.Errorf("outbox holds %d rows (err %v), want 0", n, err)
	}
}
