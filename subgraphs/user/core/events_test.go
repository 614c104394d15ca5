package core_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/outbox"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/testkit/testrun"
)

// A registration publishes UserRegistered once, through the outbox relay,
// keyed by the user and stamped by the user service; a refused
// registration publishes nothing. (That a redelivered event is applied
// once is the inbox's to prove, and the notification service's spec test
// shows it for these events.)
func TestUserRegisteredIsPublishedOnce(t *testing.T) {
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

	ada := e.register("ada@example.com", "Ada").User
	e.register("alan@example.com", "Alan")
	if _, errs, _ := e.accounts.Register(ctx, core.RegisterInput{Email: "ADA@example.com", Password: password, Name: "Again"}); len(errs) != 1 || errs[0].Code != core.EmailTaken {
		t.Fatalf("duplicate: %+v", errs)
	}
	testrun.WaitFor(t, "the outbox to drain", func() bool { return e.db.Count(t, `SELECT count(*) FROM outbox`) == 0 })
	recs := kafkatest.ReadTopic(t, cluster, topic)
	if len(recs) != 2 {
		t.Fatalf("published %d records, want 2", len(recs))
	}
	sawAda := false
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
			sawAda = true
			if m.GetEmail() != "ada@example.com" || m.GetName() != "Ada" || !m.GetRegisteredAt().AsTime().Equal(ada.CreatedAt) {
				t.Errorf("UserRegistered = %v", m)
			}
		}
	}
	if !sawAda {
		t.Error("no UserRegistered for Ada")
	}
}
