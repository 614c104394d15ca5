package notification_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/notification"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as wired by Spec, over a real broker and a real SMTP server:
// an order's events come before the user's registration (other topic),
// its confirmation is delivered twice, and the customer still gets exactly
// one welcome and one confirmation.
func TestEventsThroughKafka(t *testing.T) {
	smtp := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	svc := servicetest.Start(t, notification.Spec(notification.Config{
		SMTP: core.SMTPOptions{Addr: smtp.Addr, StartTLS: "auto", From: "Online Mart <no-reply@mart.test>"},
		SMS:  core.HTTPSMSOptions{Format: "json"},
	}))
	db := svc.DB
	produce := func(recs ...*kgo.Record) { t.Helper(); svc.Produce(t, recs...) }

	user, order := newID(), newID()
	email := "carol@example.com"
	total := &commonv1.Money{Amount: 2500, Currency: "USD"}
	produce(kafkatest.Record(t, "order", order, &orderv1.OrderPlaced{OrderId: order, UserId: user, Total: total, PlacedAt: timestamppb.Now(),
		Lines: []*orderv1.Line{{ProductId: newID(), ProductName: "Desk Lamp", Quantity: 2, UnitPrice: &commonv1.Money{Amount: 1250, Currency: "USD"}}}}))
	conf := kafkatest.Record(t, "order", order, &orderv1.OrderStatusChanged{OrderId: order, UserId: user,
		OldStatus: orderv1.Status_STATUS_AWAITING_PAYMENT, NewStatus: orderv1.Status_STATUS_CONFIRMED, ChangedAt: timestamppb.Now()})
	produce(conf, conf)
	testrun.WaitFor(t, "the confirmation to wait for the contact", func() bool {
		return db.Count(t, `SELECT count(*) FROM parked_events`) == 1
	})
	produce(kafkatest.Record(t, "user", user, &userv1.UserRegistered{UserId: user, Email: email, Name: "Carol", RegisteredAt: timestamppb.Now()}))

	testrun.WaitFor(t, "two emails", func() bool { return len(smtp.Mails()) >= 2 })
	testrun.WaitFor(t, "every notification sent", func() bool {
		return db.Count(t, `SELECT count(*) FROM notifications WHERE status <> 'SENT'`) == 0
	})
	mails := smtp.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d emails, want the welcome and one confirmation", len(mails))
	}
	var subjects []string
	for _, m := range mails {
		if m.To[0] != email {
			t.Errorf("mail to %v", m.To)
		}
		p := m.Parse(t)
		subjects = append(subjects, p.Subject)
		if strings.Contains(p.Subject, "confirmed") && !strings.Contains(p.Parts["text/plain"], "2 x Desk Lamp at 12.50 USD: 25.00 USD") {
			t.Errorf("confirmation:\n%s", p.Parts["text/plain"])
		}
	}
	if !strings.Contains(strings.Join(subjects, "|"), "Welcome to Online Mart, Carol") ||
		!strings.Contains(strings.Join(subjects, "|"), "is confirmed") {
		t.Errorf("subjects %q", subjects)
	}
	// Three distinct events, the repeated one handled once.
	if n := db.Count(t, `SELECT count(*) FROM inbox WHERE consumer = 'notification'`); n != 3 {
		t.Errorf("%d events in the inbox, want 3", n)
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Without delivery settings (the embedded default), messages go to the
// log and count as sent.
func TestRunsWithLogSenders(t *testing.T) {
	svc := servicetest.Start(t, notification.Spec(notification.Config{}))
	user := newID()
	svc.Produce(t, kafkatest.Record(t, "user", user, &userv1.UserRegistered{UserId: user, Email: "dan@example.com", Name: "Dan"}))
	testrun.WaitFor(t, "the welcome to be sent", func() bool {
		return svc.DB.Count(t, `SELECT count(*) FROM notifications WHERE user_id = ? AND status = 'SENT'`, user) == 1
	})
}
