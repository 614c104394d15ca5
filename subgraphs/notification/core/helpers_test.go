package core_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/inbox/inboxtest"
	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
	"github.com/onlinemart/mart/testkit/testrun"
)

const from = "Online Mart <no-reply@mart.test>"

// env is one test's notification database, SMTP server, SMS provider and
// notifications delivered to them.
type env struct {
	t     *testing.T
	db    *pgtest.Database
	smtp  *notifytest.SMTPServer
	sms   *notifytest.SMSServer
	notes *core.Notifications
}

// fast are options for tests: retries in milliseconds.
func fast(t *testing.T) core.Options {
	return core.Options{
		MaxAttempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		SendTimeout: 5 * time.Second, Jobs: jobs.Options{Poll: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), // shown on failure
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, "", fast(t))
}

// newEnvWith sends email to smtpAddr (a fresh server when "") with opts.
func newEnvWith(t *testing.T, smtpAddr string, opts core.Options) *env {
	t.Helper()
	e := &env{t: t, db: pgtest.New(t, "notification"), sms: notifytest.StartSMS(t)}
	if smtpAddr == "" {
		e.smtp = notifytest.StartSMTP(t, notifytest.SMTPOptions{})
		smtpAddr = e.smtp.Addr
	}
	email, err := core.NewSMTPSender(core.SMTPOptions{Addr: smtpAddr, From: from})
	if err != nil {
		t.Fatal(err)
	}
	sms, err := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: e.sms.URL, Token: "sms-secret"})
	if err != nil {
		t.Fatal(err)
	}
	opts.Senders = map[core.Channel]core.Sender{core.Email: email, core.SMS: sms}
	e.notes = core.NewNotifications(e.db.DB, opts)
	return e
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// deliver hands msg to its handler in a transaction, as the inbox does
// for an event with a new id, and returns the id.
func (e *env) deliver(msg proto.Message) string {
	e.t.Helper()
	id := events.NewID()
	e.deliverAs(id, msg)
	return id
}

// deliverAs hands msg to its handler as event id, bypassing the inbox's
// check for redeliveries.
func (e *env) deliverAs(id string, msg proto.Message) {
	e.t.Helper()
	var h inbox.Handlers
	e.notes.RegisterHandlers(&h)
	if err := inboxtest.Deliver(e.db.DB, &h, id, msg); err != nil {
		e.t.Fatalf("deliver %s: %v", events.TypeOf(msg), err)
	}
}

// work makes every send that is due now, as the worker would.
func (e *env) work() {
	e.t.Helper()
	for {
		worked, err := e.notes.ProcessNext(context.Background())
		if err != nil {
			e.t.Fatalf("ProcessNext: %v", err)
		}
		if !worked {
			return
		}
	}
}

// notifications returns a user's notifications, oldest first.
func (e *env) notifications(userID string) []core.Notification {
	e.t.Helper()
	var ns []core.Notification
	if err := e.db.DB.NewSelect().Model(&ns).Where("user_id = ?", userID).
		Order("created_at", "channel").Scan(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return ns
}

// mailsTo returns the messages the SMTP server accepted for addr.
func (e *env) mailsTo(addr string) []notifytest.Mail {
	var out []notifytest.Mail
	for _, m := range e.smtp.Mails() {
		if len(m.To) == 1 && m.To[0] == addr {
			out = append(out, m)
		}
	}
	return out
}

// summary lists notifications as "TEMPLATE/CHANNEL/STATUS".
func summary(ns []core.Notification) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n.Template) + "/" + string(n.Channel) + "/" + string(n.Status)
	}
	return strings.Join(out, " ")
}

// user is a registered customer of a test.
type user struct {
	ID, Name, Email, Phone string
}

// register delivers UserRegistered for a new user.
func (e *env) register(name, phone string) user {
	e.t.Helper()
	u := user{ID: newID(), Name: name, Email: "u-" + newID()[24:] + "@example.com", Phone: phone}
	e.deliver(registered(u))
	return u
}

func registered(u user) *userv1.UserRegistered {
	return &userv1.UserRegistered{UserId: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone,
		Role: userv1.Role_ROLE_CUSTOMER, RegisteredAt: timestamppb.Now()}
}

// line is an order line: name, quantity, unit price in cents.
type line struct {
	name  string
	qty   int32
	price int64
}

func placed(order, userID string, lines ...line) *orderv1.OrderPlaced {
	m := &orderv1.OrderPlaced{OrderId: order, UserId: userID, PlacedAt: timestamppb.Now(), PaymentToken: "tok_visa"}
	var total int64
	for _, l := range lines {
		m.Lines = append(m.Lines, &orderv1.Line{ProductId: newID(), ProductName: l.name, Quantity: l.qty,
			UnitPrice: &commonv1.Money{Amount: l.price, Currency: "EUR"}})
		total += l.price * int64(l.qty)
	}
	m.Total = &commonv1.Money{Amount: total, Currency: "EUR"}
	return m
}

func changed(order, userID string, from, to orderv1.Status, reason string) *orderv1.OrderStatusChanged {
	return &orderv1.OrderStatusChanged{OrderId: order, UserId: userID, OldStatus: from, NewStatus: to,
		Reason: reason, ChangedAt: timestamppb.Now()}
}

func confirmed(order, userID string) *orderv1.OrderStatusChanged {
	return changed(order, userID, orderv1.Status_STATUS_AWAITING_PAYMENT, orderv1.Status_STATUS_CONFIRMED, "")
}

func shipped(order, userID string) *orderv1.OrderStatusChanged {
	return changed(order, userID, orderv1.Status_STATUS_CONFIRMED, orderv1.Status_STATUS_SHIPPED, "")
}

// emailCounter reads a notification counter of the email channel.
func emailCounter(t *testing.T, name string) float64 {
	t.Helper()
	return testrun.Counter(t, name, map[string]string{"channel": string(core.Email)})
}

// gauge reads a gauge without labels from the default registry.
func gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
