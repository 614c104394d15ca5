package core_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/testkit/testrun"
)

// A registration publishes UserRegistered once, through the outbox relay,
// and a consumer (a notifier's contact book, say) applies it once even
// when Kafka delivers it twice. A refused registration publishes nothing.
func TestUserRegisteredIsPublishedAndConsumedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	topic := events.Topic("user")
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	if err := kafka.EnsureTopics(ctx, cl, 3, topic); err != nil {
		t.Fatal(err)
	}
	relay, err := outbox.NewRelay(e.db.DB, e.db.URL, cl, outbox.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Background(t, relay.Run)

	consumerDB := pgtest.New(t)
	if _, err := consumerDB.DB.Exec(`CREATE TABLE contacts (user_id text PRIMARY KEY, email text NOT NULL, applied int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	group := "test-" + consumerDB.Name
	var h inbox.Handlers
	inbox.Handle(&h, func(ctx context.Context, tx bun.Tx, _ events.Meta, m *userv1.UserRegistered) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO contacts (user_id, email, applied) VALUES (?, ?, 1)
			ON CONFLICT (user_id) DO UPDATE SET applied = contacts.applied + 1`, m.GetUserId(), m.GetEmail())
		return err
	})
	c, err := inbox.New(consumerDB.DB, cluster, group, []string{topic}, &h, inbox.Options{Logger: log,
		ClientOpts: []kgo.Opt{kgo.FetchMaxWait(250 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Background(t, c.Run)

	ada := e.register("ada@example.com", "Ada").User
	e.register("alan@example.com", "Alan")
	if _, errs, _ := e.accounts.Register(ctx, core.RegisterInput{Email: "ADA@example.com", Password: password, Name: "Again"}); len(errs) != 1 || errs[0].Code != core.EmailTaken {
		t.Fatalf("duplicate: %+v", errs)
	}
	contacts := func() int {
		var n int
		if err := consumerDB.DB.QueryRow(`SELECT count(*) FROM contacts WHERE applied = 1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testrun.WaitFor(t, "both registrations to be consumed", func() bool { return contacts() == 2 })

	recs := kafkatest.ReadTopic(t, cluster, topic)
	if len(recs) != 2 {
		t.Fatalf("published %d records, want 2", len(recs))
	}
	var first *kgo.Record
	for _, r := range recs {
		meta, msg, err := events.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := msg.(*userv1.UserRegistered)
		if !ok || meta.Source != "mart/user" || meta.Key != m.GetUserId() || m.GetRole() != userv1.Role_ROLE_CUSTOMER {
			t.Fatalf("record %+v: %v", meta, msg)
		}
		if m.GetUserId() == ada.ID {
			first = r
			if m.GetEmail() != "ada@example.com" || m.GetName() != "Ada" || !m.GetRegisteredAt().AsTime().Equal(ada.CreatedAt) {
				t.Errorf("UserRegistered = %v", m)
			}
		}
	}

	// Kafka delivers Ada's event again, as after a relay crash.
	again := &kgo.Record{Topic: first.Topic, Key: first.Key, Value: first.Value, Headers: first.Headers}
	kafkatest.Produce(t, cl, again)
	testrun.WaitFor(t, "the redelivery to be skipped", func() bool {
		return testrun.Counter(t, "mart_inbox_handled_total", map[string]string{
			"consumer": group, "type": "mart.user.v1.UserRegistered", "outcome": inbox.OutcomeDuplicate}) == 1
	})
	if n := contacts(); n != 2 {
		t.Errorf("%d contacts applied exactly once, want 2", n)
	}
}
