package core_test

import (
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
)

func message() core.Message {
	return core.Message{ID: newID(), To: "ada@example.com", Subject: "Hello", Text: "Hi", HTML: "<p>Hi</p>"}
}

// With credentials, the sender upgrades with STARTTLS and authenticates
// with PLAIN over TLS; it never sends them in the clear.
func TestSMTPStartTLSAndAuth(t *testing.T) {
	ctx := context.Background()
	serverTLS, clientTLS := notifytest.SelfSigned(t)
	users := map[string]string{"mart": "s3cret"}
	secure := notifytest.StartSMTP(t, notifytest.SMTPOptions{TLS: serverTLS, Users: users})

	for _, mode := range []string{core.StartTLSAuto, core.StartTLSAlways} {
		s, err := core.NewSMTPSender(core.SMTPOptions{Addr: secure.Addr, From: from, StartTLS: mode,
			Username: "mart", Password: "s3cret", TLSConfig: clientTLS})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, message()); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	for _, m := range secure.Mails() {
		if !m.TLS || m.User != "mart" {
			t.Errorf("accepted a mail with TLS %v, user %q", m.TLS, m.User)
		}
	}
	if n := len(secure.Mails()); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}

	wrong, _ := core.NewSMTPSender(core.SMTPOptions{Addr: secure.Addr, From: from, Username: "mart", Password: "guess", TLSConfig: clientTLS})
	if err := wrong.Send(ctx, message()); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("wrong password: %v", err)
	}
	untrusted, _ := core.NewSMTPSender(core.SMTPOptions{Addr: secure.Addr, From: from, Username: "mart", Password: "s3cret"})
	if err := untrusted.Send(ctx, message()); err == nil || !strings.Contains(err.Error(), "starttls") {
		t.Errorf("untrusted certificate: %v", err)
	}

	// A server without STARTTLS that offers AUTH anyway.
	plain := notifytest.StartSMTP(t, notifytest.SMTPOptions{Users: users})
	s, _ := core.NewSMTPSender(core.SMTPOptions{Addr: plain.Addr, From: from, Username: "mart", Password: "s3cret"})
	if err := s.Send(ctx, message()); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("auth without TLS: %v", err)
	}
	if plain.Auths() != 0 {
		t.Error("the credentials were sent in the clear")
	}
	always, _ := core.NewSMTPSender(core.SMTPOptions{Addr: plain.Addr, From: from, StartTLS: core.StartTLSAlways})
	if err := always.Send(ctx, message()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("starttls always without STARTTLS: %v", err)
	}
	if _, err := core.NewSMTPSender(core.SMTPOptions{Addr: plain.Addr, From: from, StartTLS: core.StartTLSNever, Username: "mart"}); err == nil {
		t.Error("credentials with starttls never were accepted")
	}
	if n := len(plain.Mails()); n != 0 {
		t.Errorf("%d mails through the plain server, want 0", n)
	}
}

// Non-ASCII headers are RFC 2047 encoded; bodies are quoted-printable.
func TestComposeEncodesNonASCII(t *testing.T) {
	fromAddr := &mail.Address{Name: "Marché en ligne", Address: "no-reply@mart.test"}
	to := &mail.Address{Address: "zoe@example.com"}
	m := core.Message{ID: newID(), Subject: "Votre commande est confirmée ✓", Text: "Merci, Zoë !", HTML: "<p>Merci, Zoë !</p>"}
	raw, err := core.Compose(fromAddr, to, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		for _, r := range line {
			if r > 127 {
				t.Fatalf("header line is not ASCII: %q", line)
			}
		}
	}
	if !strings.Contains(head, "Subject: =?utf-8?q?") || !strings.Contains(head, "From: =?utf-8?q?March") {
		t.Errorf("headers not encoded:\n%s", head)
	}
	p := notifytest.Mail{Data: raw}.Parse(t)
	if p.Subject != m.Subject || p.Parts["text/plain"] != m.Text || p.Parts["text/html"] != m.HTML {
		t.Errorf("read back %q %+v", p.Subject, p.Parts)
	}

	// Without HTML, a plain text message.
	m.HTML = ""
	raw, _ = core.Compose(fromAddr, to, m, time.Now())
	if p := (notifytest.Mail{Data: raw}).Parse(t); p.Type != "text/plain" || p.Parts["text/plain"] != m.Text {
		t.Errorf("text-only message: %s %+v", p.Type, p.Parts)
	}
}

// The SMS provider gets JSON or a form with a bearer token; anything but
// a 2xx answer is an error (and the text is tried again).
func TestHTTPSMSSender(t *testing.T) {
	ctx := context.Background()
	srv := notifytest.StartSMS(t)
	for _, format := range []string{core.SMSFormatJSON, core.SMSFormatForm} {
		s, err := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: srv.URL, Token: "tok", Format: format})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, core.Message{ID: newID(), To: "+1 555 0100", Text: "Order #1 & co shipped"}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
	}
	texts := srv.Texts()
	if len(texts) != 2 || texts[1].ContentType != "application/x-www-form-urlencoded" {
		t.Fatalf("texts %+v", texts)
	}
	for _, txt := range texts {
		if txt.To != "+1 555 0100" || txt.Body != "Order #1 & co shipped" || txt.Authorization != "Bearer tok" {
			t.Errorf("text %+v", txt)
		}
	}

	srv.FailNext(1)
	s, _ := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: srv.URL})
	if err := s.Send(ctx, core.Message{To: "+1", Text: "x"}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	down, _ := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: "http://" + notifytest.FreeAddr(t)})
	if err := down.Send(ctx, core.Message{To: "+1", Text: "x"}); err == nil {
		t.Error("no error from a provider that is down")
	}
	if _, err := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: srv.URL, Format: "xml"}); err == nil {
		t.Error("format xml accepted")
	}
}

// A failing SMS provider is retried like a mail server.
func TestSMSProviderErrorIsRetried(t *testing.T) {
	opts := fast(t)
	opts.InitialBackoff, opts.MaxBackoff = time.Hour, time.Hour // the test says when
	e := newEnvWith(t, "", opts)
	u, order := smsCustomerWithOrder(t, e)
	e.sms.FailNext(1)
	e.deliver(shipped(order, u.ID))
	e.work()
	ns := e.notifications(u.ID)
	smsRow := ns[len(ns)-1]
	if smsRow.Channel != core.SMS || smsRow.Status != core.Queued || smsRow.LastError == nil || !strings.Contains(*smsRow.LastError, "503") {
		t.Fatalf("after a 503: %+v", smsRow)
	}
	// Due now rather than after the backoff.
	if _, err := e.db.DB.NewRaw(`UPDATE notifications SET next_attempt_at = now() WHERE id = ?`, smsRow.ID).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.work()
	if n := e.notifications(u.ID)[len(ns)-1]; n.Status != core.Sent || n.Attempts != 2 {
		t.Errorf("after the retry: %s, %d attempts", n.Status, n.Attempts)
	}
	if len(e.sms.Texts()) != 1 {
		t.Errorf("%d texts, want 1", len(e.sms.Texts()))
	}
}

// A refusal that retrying cannot change is permanent: a mail server that
// will not take mail for the address (5xx to RCPT TO), an SMS provider
// that refuses the message (400, 404, 422). Temporary ones are not.
func TestRefusalsThatRetriesCannotChangeArePermanent(t *testing.T) {
	ctx := context.Background()
	srv := notifytest.StartSMTP(t, notifytest.SMTPOptions{Refuse: map[string]int{"gone@example.com": 550, "busy@example.com": 450}})
	smtpSender, err := core.NewSMTPSender(core.SMTPOptions{Addr: srv.Addr, From: from, StartTLS: core.StartTLSNever})
	if err != nil {
		t.Fatal(err)
	}
	for to, permanent := range map[string]bool{"gone@example.com": true, "busy@example.com": false} {
		m := message()
		m.To = to
		err := smtpSender.Send(ctx, m)
		if err == nil || core.IsPermanent(err) != permanent {
			t.Errorf("mail to %s: %v, permanent %v, want permanent %v", to, err, core.IsPermanent(err), permanent)
		}
	}

	sms := notifytest.StartSMS(t)
	smsSender, err := core.NewHTTPSMSSender(core.HTTPSMSOptions{URL: sms.URL, Format: core.SMSFormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	for status, permanent := range map[int]bool{400: true, 404: true, 422: true, 401: false, 429: false, 503: false} {
		sms.FailNextWith(1, status)
		err := smsSender.Send(ctx, core.Message{ID: newID(), To: "+15550111", Text: "Hi"})
		if err == nil || core.IsPermanent(err) != permanent {
			t.Errorf("SMS answered %d: %v, permanent %v, want permanent %v", status, err, core.IsPermanent(err), permanent)
		}
	}
}

// A permanent refusal fails the notification at once; it is not retried.
func TestPermanentRefusalIsNotRetried(t *testing.T) {
	e := newEnvWith(t, "", fast(t))
	u, order := smsCustomerWithOrder(t, e)
	e.sms.FailNextWith(1, 400)
	e.deliver(shipped(order, u.ID))
	e.work()
	ns := e.notifications(u.ID)
	smsRow := ns[len(ns)-1]
	if smsRow.Channel != core.SMS || smsRow.Status != core.Failed || smsRow.Attempts != 1 || smsRow.LastError == nil || !strings.Contains(*smsRow.LastError, "400") {
		t.Fatalf("after a 400: %+v, want FAILED after 1 attempt", smsRow)
	}
}

// smsCustomerWithOrder registers a customer who wants order updates by
// SMS too, and places an order for them.
func smsCustomerWithOrder(t *testing.T, e *env) (u user, order string) {
	t.Helper()
	u = e.register("Sam", "+1 555 0111")
	if _, err := e.notes.UpdatePreferences(context.Background(), u.ID,
		core.PreferencesInput{OrderUpdates: &core.ChannelPreferencesInput{SMS: ptr(true)}}); err != nil {
		t.Fatal(err)
	}
	order = newID()
	e.deliver(placed(order, u.ID, line{"Mug", 1, 500}))
	return u, order
}
