package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// A new user gets a welcome email: one message, to them, multipart with a
// text and an HTML part, with the headers a mail client expects.
func TestWelcomeEmail(t *testing.T) {
	e := newEnv(t)
	sentBefore := emailCounter(t, "mart_notification_sent_total")
	ada := e.register("Ada Lovelace", "")
	ns := e.notifications(ada.ID)
	if summary(ns) != "WELCOME/EMAIL/QUEUED" {
		t.Fatalf("recorded %s, want one queued welcome email", summary(ns))
	}
	e.work()

	mails := e.smtp.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	m := mails[0]
	if len(m.To) != 1 || m.To[0] != ada.Email || m.From != "no-reply@mart.test" {
		t.Errorf("envelope from %s to %v, want no-reply@mart.test to %s", m.From, m.To, ada.Email)
	}
	p := m.Parse(t)
	if p.Subject != "Welcome to Online Mart, Ada Lovelace" {
		t.Errorf("subject %q", p.Subject)
	}
	if got := p.Header.Get("To"); !strings.Contains(got, ada.Email) {
		t.Errorf("To: %q", got)
	}
	if got := p.Header.Get("From"); got != `"Online Mart" <no-reply@mart.test>` {
		t.Errorf("From: %q", got)
	}
	if got, want := p.Header.Get("Message-Id"), "<"+ns[0].ID+"@mart.test>"; got != want {
		t.Errorf("Message-ID %q, want %q", got, want)
	}
	if d, err := p.Header.Date(); err != nil || time.Since(d) > time.Minute || time.Since(d) < -time.Minute {
		t.Errorf("Date %q: %v", p.Header.Get("Date"), err)
	}
	if p.Header.Get("Mime-Version") != "1.0" || p.Type != "multipart/alternative" || len(p.Parts) != 2 {
		t.Fatalf("MIME %s with parts %v", p.Type, p.Parts)
	}
	if txt := p.Parts["text/plain"]; !strings.Contains(txt, "Hi Ada Lovelace,") || !strings.Contains(txt, ada.Email) {
		t.Errorf("text part:\n%s", txt)
	}
	if html := p.Parts["text/html"]; !strings.Contains(html, "<h1>Welcome, Ada Lovelace!</h1>") {
		t.Errorf("html part:\n%s", html)
	}

	n := e.notifications(ada.ID)[0]
	if n.Status != core.Sent || n.SentAt == nil || n.Attempts != 1 || n.NextAttemptAt != nil || n.LastError != nil {
		t.Errorf("after sending: %+v", n)
	}
	if got := emailCounter(t, "mart_notification_sent_total") - sentBefore; got != 1 {
		t.Errorf("sent_total grew by %v, want 1", got)
	}
}

// An order's confirmation lists its lines (names, quantities, prices) and
// its total; statuses nobody is told about record nothing.
func TestOrderConfirmationListsTheLines(t *testing.T) {
	e := newEnv(t)
	bob := e.register("Bob", "")
	order := newID()
	e.deliver(placed(order, bob.ID, line{"Blue Mug", 2, 1250}, line{"Earl Grey <loose>", 1, 799}))
	e.deliver(changed(order, bob.ID, orderv1.Status_STATUS_PENDING, orderv1.Status_STATUS_AWAITING_PAYMENT, ""))
	e.deliver(confirmed(order, bob.ID))
	ns := e.notifications(bob.ID)
	if got := summary(ns); got != "WELCOME/EMAIL/QUEUED ORDER_CONFIRMED/EMAIL/QUEUED" {
		t.Fatalf("recorded %s", got)
	}
	// The row records its order (the welcome has none), as stored.
	if ns[0].OrderID != nil || ns[1].OrderID == nil || *ns[1].OrderID != order {
		t.Errorf("order ids: welcome %v, confirmation %v, want nil and %s", ns[0].OrderID, ns[1].OrderID, order)
	}
	if n := e.db.Count(t, `SELECT count(*) FROM notifications WHERE order_id = ? AND template = 'ORDER_CONFIRMED' AND channel = 'EMAIL'`, order); n != 1 {
		t.Errorf("%d confirmation emails recorded for the order, want 1", n)
	}
	e.work()

	// A re-send is about the same order.
	c, userErrs, err := e.notes.Resend(context.Background(), core.ResendInput{NotificationID: ns[1].ID})
	if err != nil || userErrs != nil {
		t.Fatalf("Resend: %v %v", userErrs, err)
	}
	if c.OrderID == nil || *c.OrderID != order {
		t.Errorf("re-send order id %v, want %s", c.OrderID, order)
	}
	if n := e.db.Count(t, `SELECT count(*) FROM notifications WHERE order_id = ? AND resend_of = ?`, order, ns[1].ID); n != 1 {
		t.Errorf("%d re-sends recorded for the order, want 1", n)
	}
	e.work()

	mails := e.mailsTo(bob.Email)
	if len(mails) != 3 {
		t.Fatalf("%d mails, want welcome, confirmation and its re-send", len(mails))
	}
	p := mails[1].Parse(t)
	if want := "Your order #" + strings.ToUpper(order[len(order)-8:]) + " is confirmed"; p.Subject != want {
		t.Errorf("subject %q, want %q", p.Subject, want)
	}
	txt := p.Parts["text/plain"]
	for _, want := range []string{order, "2 x Blue Mug at 12.50 EUR: 25.00 EUR", "1 x Earl Grey <loose> at 7.99 EUR: 7.99 EUR", "Total: 32.99 EUR"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text part lacks %q:\n%s", want, txt)
		}
	}
	html := p.Parts["text/html"]
	for _, want := range []string{"<td>Blue Mug</td>", `<td align="right">2</td>`, "<td>Earl Grey &lt;loose&gt;</td>", "<strong>32.99 EUR</strong>"} {
		if !strings.Contains(html, want) {
			t.Errorf("html part lacks %q:\n%s", want, html)
		}
	}
}

// SMS goes only to users who opted in and have a phone; the others get no
// SMS row at all, and nothing fails.
func TestSMSOnlyWhenOptedInAndReachable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	optIn := core.PreferencesInput{OrderUpdates: &core.ChannelPreferencesInput{SMS: ptr(true)}}
	withPhone := e.register("Phoebe", "+1 555 0100")
	noPhone := e.register("Nora", "")
	optedOut := e.register("Otto", "+1 555 0199") // defaults: no SMS
	for _, u := range []user{withPhone, noPhone} {
		if _, err := e.notes.UpdatePreferences(ctx, u.ID, optIn); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []user{withPhone, noPhone, optedOut} {
		order := newID()
		e.deliver(placed(order, u.ID, line{"Mug", 1, 500}))
		e.deliver(shipped(order, u.ID))
	}
	e.work()

	if got := summary(e.notifications(withPhone.ID)); got != "WELCOME/EMAIL/SENT ORDER_SHIPPED/EMAIL/SENT ORDER_SHIPPED/SMS/SENT" {
		t.Errorf("Phoebe: %s", got)
	}
	for _, u := range []user{noPhone, optedOut} {
		if got := summary(e.notifications(u.ID)); got != "WELCOME/EMAIL/SENT ORDER_SHIPPED/EMAIL/SENT" {
			t.Errorf("%s: %s", u.Name, got)
		}
	}
	texts := e.sms.Texts()
	if len(texts) != 1 {
		t.Fatalf("%d texts, want 1: %+v", len(texts), texts)
	}
	txt := texts[0]
	if txt.To != withPhone.Phone || !strings.Contains(txt.Body, "has shipped") || len([]rune(txt.Body)) > core.MaxSMS {
		t.Errorf("text %+v", txt)
	}
	if txt.Authorization != "Bearer sms-secret" || txt.ContentType != "application/json" {
		t.Errorf("provider saw Authorization %q, Content-Type %q", txt.Authorization, txt.ContentType)
	}
}

// With the mail server down, the worker retries with backoff; once it is
// up (on the same address), the email is delivered, once.
func TestSMTPOutageIsRetriedThenDeliveredOnce(t *testing.T) {
	addr := notifytest.FreeAddr(t)
	opts := fast(t)
	opts.MaxAttempts = 1000 // the outage must not outlast the attempts
	e := newEnvWith(t, addr, opts)
	retriesBefore := emailCounter(t, "mart_notification_retries_total")
	ada := e.register("Ada", "")
	testrun.Background(t, e.notes.Run)

	testrun.WaitFor(t, "failed attempts", func() bool {
		ns := e.notifications(ada.ID)
		return len(ns) == 1 && ns[0].Attempts >= 2 && ns[0].LastError != nil
	})
	if n := e.notifications(ada.ID)[0]; n.Status != core.Queued || !strings.Contains(*n.LastError, "smtp") {
		t.Fatalf("during the outage: %s, last error %q", n.Status, *n.LastError)
	}
	if emailCounter(t, "mart_notification_retries_total") <= retriesBefore {
		t.Error("retries_total did not grow")
	}

	srv := notifytest.StartSMTP(t, notifytest.SMTPOptions{Addr: addr})
	testrun.WaitFor(t, "delivery", func() bool { return e.notifications(ada.ID)[0].Status == core.Sent })
	if mails := srv.Mails(); len(mails) != 1 || mails[0].To[0] != ada.Email {
		t.Errorf("server got %d mails, want 1 to %s", len(mails), ada.Email)
	}
}

// A notification that keeps failing ends FAILED after MaxAttempts, with
// the last error.
func TestFailedAfterMaxAttempts(t *testing.T) {
	e := newEnvWith(t, notifytest.FreeAddr(t), fast(t)) // 3 attempts
	failedBefore := emailCounter(t, "mart_notification_failed_total")
	ada := e.register("Ada", "")
	testrun.Background(t, e.notes.Run)

	testrun.WaitFor(t, "FAILED", func() bool { return e.notifications(ada.ID)[0].Status == core.Failed })
	n := e.notifications(ada.ID)[0]
	if n.Attempts != 3 || n.LastError == nil || !strings.Contains(*n.LastError, "connect") || n.NextAttemptAt != nil || n.SentAt != nil {
		t.Errorf("failed notification: attempts %d, last error %v, next %v", n.Attempts, n.LastError, n.NextAttemptAt)
	}
	if got := emailCounter(t, "mart_notification_failed_total") - failedBefore; got != 1 {
		t.Errorf("failed_total grew by %v, want 1", got)
	}
}

// The same event handled twice (the inbox absorbs exact redeliveries; this
// goes around it) records one notification per channel.
func TestSameEventNotifiesOnce(t *testing.T) {
	e := newEnv(t)
	bob := e.register("Bob", "")
	order := newID()
	e.deliver(placed(order, bob.ID, line{"Mug", 1, 500}))
	ev := shipped(order, bob.ID)
	id := e.deliver(ev)
	e.deliverAs(id, ev)
	e.work()
	e.deliverAs(id, ev) // after it was sent, too
	e.work()
	if got := summary(e.notifications(bob.ID)); got != "WELCOME/EMAIL/SENT ORDER_SHIPPED/EMAIL/SENT" {
		t.Errorf("recorded %s", got)
	}
	if n := len(e.mailsTo(bob.Email)); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}
}

// Whatever a name holds, the HTML part escapes it; the text part and the
// subject, which are not HTML, keep it as it is.
func TestHTMLIsEscaped(t *testing.T) {
	e := newEnv(t)
	name := `<script>alert("hi")</script> & co`
	u := e.register(name, "")
	e.work()
	p := e.mailsTo(u.Email)[0].Parse(t)
	html := p.Parts["text/html"]
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; co") {
		t.Errorf("html part:\n%s", html)
	}
	if !strings.Contains(p.Parts["text/plain"], name) || !strings.Contains(p.Subject, name) {
		t.Errorf("text part or subject changed the name: %q\n%s", p.Subject, p.Parts["text/plain"])
	}
}

// Events that arrive before the order or contact they need wait for it,
// then notify as if they had come in order.
func TestEventsBeforeTheirReadModels(t *testing.T) {
	e := newEnv(t)
	u := user{ID: newID(), Name: "Late", Email: "late@example.com"}
	paid, declined := newID(), newID()

	// payment.events.v1 first: neither the order nor the user is known.
	e.deliver(&paymentv1.PaymentRefunded{OrderId: paid, PaymentId: newID(), Amount: &commonv1.Money{Amount: 1999, Currency: "EUR"}})
	e.deliver(&paymentv1.PaymentFailed{OrderId: declined, PaymentId: newID(), Code: "INSUFFICIENT_FUNDS"})
	// order.events.v1 next: the orders and their status, still no contact.
	e.deliver(placed(paid, u.ID, line{"Lamp", 1, 1999}))
	e.deliver(confirmed(paid, u.ID))
	e.deliver(placed(declined, u.ID, line{"Chair", 2, 4500}))
	e.deliver(changed(declined, u.ID, orderv1.Status_STATUS_AWAITING_PAYMENT, orderv1.Status_STATUS_CANCELLED, "PAYMENT_DECLINED"))
	if ns := e.notifications(u.ID); len(ns) != 0 {
		t.Fatalf("notified before the contact was known: %s", summary(ns))
	}
	if n := e.db.Count(t, `SELECT count(*) FROM parked_events WHERE user_id = ?`, u.ID); n != 4 {
		t.Fatalf("%d events wait for the user, want 4", n)
	}

	e.deliver(registered(u))
	got := e.notifications(u.ID)
	templates := map[core.Template]core.Notification{}
	for _, n := range got {
		templates[n.Template] = n
	}
	if len(got) != 5 || len(templates) != 5 {
		t.Fatalf("recorded %s, want welcome, refund, payment failed, confirmed and cancelled", summary(got))
	}
	if n := e.db.Count(t, `SELECT count(*) FROM parked_events`); n != 0 {
		t.Errorf("%d events still parked", n)
	}
	for tmpl, want := range map[core.Template]string{
		core.RefundIssued:   paid,
		core.PaymentFailed:  declined,
		core.OrderConfirmed: paid,
		core.OrderCancelled: declined,
		core.Welcome:        "",
	} {
		if got := templates[tmpl].OrderID; (want == "") != (got == nil) || (got != nil && *got != want) {
			t.Errorf("%s recorded order id %v, want %q", tmpl, got, want)
		}
	}
	for tmpl, want := range map[core.Template]string{
		core.RefundIssued:   "We refunded 19.99 EUR",
		core.PaymentFailed:  "We could not take the payment of 90.00 EUR for your order " + declined + ": the card has insufficient funds.",
		core.OrderConfirmed: "1 x Lamp at 19.99 EUR: 19.99 EUR",
		core.OrderCancelled: "was cancelled: the payment was declined.",
	} {
		if body := templates[tmpl].BodyText; !strings.Contains(body, want) {
			t.Errorf("%s says:\n%s\nwant %q", tmpl, body, want)
		}
	}
}

// The contact follows the newest user event, whatever order they arrive
// in, and notifications go to it.
func TestContactKeepsTheNewestDetails(t *testing.T) {
	e := newEnv(t)
	u := user{ID: newID(), Name: "Ann", Email: "ann@example.com"}
	t0 := time.Now().Add(-time.Hour)
	reg := registered(u)
	reg.RegisteredAt = timestamppb.New(t0)
	e.deliver(reg)
	update := func(email, phone string, at time.Time) *userv1.UserProfileUpdated {
		return &userv1.UserProfileUpdated{UserId: u.ID, Email: email, Name: "Ann B", Phone: phone, UpdatedAt: timestamppb.New(at)}
	}
	e.deliver(update("ann.new@example.com", "+1 555 0142", t0.Add(2*time.Minute)))
	e.deliver(update("ann.stale@example.com", "", t0.Add(time.Minute))) // older: ignored

	var c core.Contact
	if err := e.db.DB.NewSelect().Model(&c).Where("user_id = ?", u.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Email != "ann.new@example.com" || c.Phone != "+1 555 0142" || c.Name != "Ann B" {
		t.Errorf("contact %+v", c)
	}
	order := newID()
	e.deliver(placed(order, u.ID, line{"Mug", 1, 500}))
	e.deliver(shipped(order, u.ID))
	ns := e.notifications(u.ID)
	if last := ns[len(ns)-1]; last.Template != core.OrderShipped || last.Recipient != "ann.new@example.com" {
		t.Errorf("shipped notice to %s", last.Recipient)
	}
}

// Preferences start at the defaults; a partial update changes only what it
// names; opting out of a category's email records no email.
func TestPreferences(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.register("Pat", "+1 555 0123")
	p, err := e.notes.Preferences(ctx, u.ID)
	if err != nil || p != core.DefaultPreferences() {
		t.Fatalf("initial preferences %+v (%v)", p, err)
	}
	want := core.DefaultPreferences()
	if !want.Account.Email || want.Account.SMS || !want.OrderUpdates.Email || want.OrderUpdates.SMS || want.Marketing.Email || want.Marketing.SMS {
		t.Errorf("defaults %+v", want)
	}
	p, err = e.notes.UpdatePreferences(ctx, u.ID, core.PreferencesInput{
		OrderUpdates: &core.ChannelPreferencesInput{Email: ptr(false), SMS: ptr(true)},
	})
	want.OrderUpdates = core.ChannelPreferences{Email: false, SMS: true}
	if err != nil || p != want {
		t.Fatalf("after update %+v (%v), want %+v", p, err, want)
	}
	p, _ = e.notes.UpdatePreferences(ctx, u.ID, core.PreferencesInput{Marketing: &core.ChannelPreferencesInput{Email: ptr(true)}})
	want.Marketing.Email = true
	if stored, _ := e.notes.Preferences(ctx, u.ID); p != want || stored != want {
		t.Fatalf("after second update %+v, stored %+v, want %+v", p, stored, want)
	}

	order := newID()
	e.deliver(placed(order, u.ID, line{"Mug", 1, 500}))
	e.deliver(shipped(order, u.ID))
	if got := summary(e.notifications(u.ID)); got != "WELCOME/EMAIL/QUEUED ORDER_SHIPPED/SMS/QUEUED" {
		t.Errorf("recorded %s", got)
	}
}

// The queue age gauge reports how long the oldest due notification waited.
func TestQueueAge(t *testing.T) {
	e := newEnv(t)
	ada := e.register("Ada", "")
	if _, err := e.db.DB.NewRaw(`UPDATE notifications SET next_attempt_at = now() - interval '90 seconds' WHERE user_id = ?`,
		ada.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if worked, err := e.notes.ProcessNext(context.Background()); !worked || err != nil {
		t.Fatalf("ProcessNext: %v %v", worked, err)
	}
	if age := gauge(t, "mart_notification_queue_age_seconds"); age < 90 || age > 600 {
		t.Errorf("queue age %v, want about 90s", age)
	}
	e.work()
	if age := gauge(t, "mart_notification_queue_age_seconds"); age != 0 {
		t.Errorf("queue age %v with nothing due, want 0", age)
	}
}

func ptr[T any](v T) *T { return &v }
