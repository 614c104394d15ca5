package core

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// FuzzRender renders every template for both channels with hostile
// names, emails and reasons (they come from users and providers): no
// panic, no error, template syntax in data stays text, the HTML escapes
// it, the subject is one line and an SMS fits one message.
func FuzzRender(f *testing.F) {
	f.Add("Ada", "ada@example.com", "0193c1d4-0000-7000-8000-000000000001", "the card was declined", "Mug", int32(2))
	f.Add("{{.Email}}{{template \"body\"}}", "x@y.z", "{{", "${7*7} <%= 7*7 %>", "{{range .}}", int32(-1))
	f.Add("<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'; DROP TABLE notifications; --", "</title><b>", "&amp;", int32(0))
	f.Add("Eve\r\nBcc: victim@example.com", "a@b.c\r\nX: y", "\u202e", strings.Repeat("long ", 100), "\x00\xff", int32(2147483647))
	f.Fuzz(func(t *testing.T, name, email, orderID, reason, product string, qty int32) {
		d := Data{Name: name, Email: email, OrderID: orderID, OrderRef: orderRef(orderID), Reason: reason,
			Lines: []LineView{{Name: product, Quantity: qty, UnitPrice: "$1.00", Total: "$2.00"}}, Items: int(qty), Total: "$2.00", Amount: "$2.00"}
		for tmpl := range templates {
			for _, c := range []Channel{Email, SMS} {
				out, err := Render(tmpl, c, d)
				if err != nil {
					t.Fatalf("%s/%s: %v", tmpl, c, err)
				}
				if c == SMS {
					checkSMS(t, tmpl, out)
				} else {
					checkEmail(t, tmpl, out, name, reason, product)
				}
			}
		}
	})
}

// checkSMS checks that an SMS rendered from tmpl is one line that fits one
// message.
func checkSMS(t *testing.T, tmpl Template, out Content) {
	t.Helper()
	if utf8.RuneCountInString(out.Text) > MaxSMS || strings.ContainsAny(out.Text, "\r\n") {
		t.Fatalf("%s SMS %q", tmpl, out.Text)
	}
}

// checkEmail checks that an email rendered from tmpl has a one-line
// subject and that its HTML escapes the markup of the hostile inputs.
func checkEmail(t *testing.T, tmpl Template, out Content, hostile ...string) {
	t.Helper()
	if strings.ContainsAny(out.Subject, "\r\n") {
		t.Fatalf("%s subject spans lines: %q", tmpl, out.Subject)
	}
	for _, s := range hostile {
		if strings.ContainsAny(s, "<>") && strings.Contains(out.HTML, s) {
			t.Fatalf("%s HTML holds %q unescaped", tmpl, s)
		}
	}
}

// FuzzPreferencesInput: a preferences change touches exactly the
// channels it names.
func FuzzPreferencesInput(f *testing.F) {
	f.Add(uint16(0), uint16(0))
	f.Add(uint16(0xfff), uint16(0x0f0))
	f.Fuzz(func(t *testing.T, set, val uint16) {
		bit := func(n int) *bool {
			if set&(1<<n) == 0 {
				return nil
			}
			v := val&(1<<n) != 0
			return &v
		}
		in := PreferencesInput{}
		if set&(1<<6) != 0 {
			in.Account = &ChannelPreferencesInput{Email: bit(0), SMS: bit(1)}
		}
		if set&(1<<7) != 0 {
			in.OrderUpdates = &ChannelPreferencesInput{Email: bit(2), SMS: bit(3)}
		}
		if set&(1<<8) != 0 {
			in.Marketing = &ChannelPreferencesInput{Email: bit(4), SMS: bit(5)}
		}
		before := DefaultPreferences()
		p := before
		apply(&p.Account, in.Account)
		apply(&p.OrderUpdates, in.OrderUpdates)
		apply(&p.Marketing, in.Marketing)
		check := func(got, was ChannelPreferences, in *ChannelPreferencesInput) {
			want := was
			if in != nil && in.Email != nil {
				want.Email = *in.Email
			}
			if in != nil && in.SMS != nil {
				want.SMS = *in.SMS
			}
			if got != want {
				t.Fatalf("applied %+v to %+v: %+v", in, was, got)
			}
		}
		check(p.Account, before.Account, in.Account)
		check(p.OrderUpdates, before.OrderUpdates, in.OrderUpdates)
		check(p.Marketing, before.Marketing, in.Marketing)
	})
}

// FuzzResendInput: resendNotification takes a UUID.
func FuzzResendInput(f *testing.F) {
	f.Add("0193c1d4-0000-7000-8000-000000000001")
	f.Add("")
	f.Add("1 OR 1=1")
	f.Fuzz(func(t *testing.T, id string) {
		for _, e := range usererror.Validate("input", ResendInput{NotificationID: id}) {
			if len(e.Field) != 2 || e.Field[1] != "notificationId" || !strings.Contains(e.Message, "notificationId") {
				t.Fatalf("bad user error %+v", e)
			}
		}
		if _, ok := uuids.Canonical(id); !ok && len(usererror.Validate("input", ResendInput{NotificationID: id})) == 0 {
			t.Fatalf("accepted %q, which is not a UUID", id)
		}
	})
}

// FuzzFormatMoney: amounts in notifications read back as the amount.
// Order totals stay far below 10^16 minor units (price ≤ 10^12, quantity
// ≤ 100, lines ≤ 50), which bounds the input.
func FuzzFormatMoney(f *testing.F) {
	f.Add(int64(1250), "USD")
	f.Add(int64(-5), "JPY")
	f.Add(int64(1001), "KWD")
	f.Add(int64(0), "")
	f.Fuzz(func(t *testing.T, minor int64, currency string) {
		if minor > 1e16 || minor < -1e16 {
			return
		}
		s := FormatMoney(minor, currency)
		num, cur, ok := strings.Cut(s, " ")
		if !ok || cur != currency {
			t.Fatalf("FormatMoney(%d, %q) = %q", minor, currency, s)
		}
		digits := strings.ReplaceAll(strings.TrimPrefix(num, "-"), ".", "")
		var back int64
		for _, c := range digits {
			if c < '0' || c > '9' {
				t.Fatalf("FormatMoney(%d, %q) = %q", minor, currency, s)
			}
			back = back*10 + int64(c-'0')
		}
		if strings.HasPrefix(num, "-") {
			back = -back
		}
		if back != minor {
			t.Fatalf("FormatMoney(%d, %q) = %q reads as %d", minor, currency, s, back)
		}
	})
}
