package e2e

import (
	"strings"
	"testing"

	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
	"github.com/onlinemart/mart/testkit/systemtest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// Customers hear about their account and orders by email (and SMS when
// they opt in), delivered through a real SMTP server and SMS endpoint.
func TestCustomersAreNotified(t *testing.T) {
	mailbox := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	sms := notifytest.StartSMS(t)
	sys := systemtest.StartWith(t, map[string]string{
		"MART_SMTP_ADDR": mailbox.Addr, "MART_SMTP_STARTTLS": "never", "MART_SMS_URL": sms.URL,
	})
	s := &saga{t: t, sys: sys, admin: sys.Admin(t)}
	kettle := s.product("KETTLE-N", 2599, 5)

	var reg struct {
		Register struct{ AccessToken *string }
	}
	sys.MustQuery(t, `mutation { register(input: {email: "nina@example.com", password: "nina-password", name: "Nina", phone: "+15550100"}) { accessToken } }`, nil, &reg)
	if reg.Register.AccessToken == nil {
		t.Fatal("register failed")
	}
	nina := sys.As(*reg.Register.AccessToken)

	mailTo := func(addr, subject string) *notifytest.Parsed {
		for _, m := range mailbox.Mails() {
			p := m.Parse(t)
			if len(m.To) == 1 && m.To[0] == addr && strings.Contains(p.Subject, subject) {
				return &p
			}
		}
		return nil
	}
	testrun.WaitFor(t, "the welcome email", func() bool { return mailTo("nina@example.com", "Welcome") != nil })

	nina.MustQuery(t, `mutation { updateNotificationPreferences(input: {orderUpdates: {sms: true}}) { userErrors { message } } }`, nil, nil)
	id := s.place(nina, orderInput("tok_visa", "", line(kettle, 2))).PlaceOrder.Order.ID
	s.settle(nina, id, "CONFIRMED")

	var confirmation *notifytest.Parsed
	testrun.WaitFor(t, "the order confirmation email", func() bool {
		confirmation = mailTo("nina@example.com", "confirmed")
		return confirmation != nil
	})
	text := confirmation.Parts["text/plain"]
	if !strings.Contains(text, "Saga KETTLE-N") || !strings.Contains(text, "51.98") {
		t.Errorf("confirmation does not list the line and total:\n%s", text)
	}
	testrun.WaitFor(t, "the confirmation SMS", func() bool {
		for _, m := range sms.Texts() {
			if m.To == "+15550100" && strings.Contains(strings.ToLower(m.Body), "confirmed") {
				return true
			}
		}
		return false
	})

	var mine struct {
		Me struct {
			Notifications struct {
				Edges []struct {
					Node struct{ Channel, Template, Status string }
				}
			}
		}
	}
	nina.MustQuery(t, `{ me { notifications(first: 50) { edges { node { channel template status } } } } }`, nil, &mine)
	if len(mine.Me.Notifications.Edges) < 3 {
		t.Errorf("notification history: %+v", mine.Me.Notifications.Edges)
	}
}
