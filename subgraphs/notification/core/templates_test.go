package core_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onlinemart/mart/subgraphs/notification/core"
)

// Every template renders for both channels; texts fit one SMS, however
// long the data; subjects are one line.
func TestEveryTemplateRenders(t *testing.T) {
	long := strings.Repeat("Bartholomew ", 20)
	d := core.Data{
		Name: long + "\nSmith", Email: "b@example.com", OrderID: newID(), OrderRef: "#0A1B2C3D",
		Lines: []core.LineView{{Name: long, Quantity: 3, UnitPrice: "1.00 EUR", Total: "3.00 EUR"}}, Items: 3,
		Total: "3.00 EUR", Amount: "3.00 EUR", Reason: core.CancelReason("OUT_OF_STOCK"),
	}
	for _, tmpl := range []core.Template{core.Welcome, core.OrderConfirmed, core.OrderCancelled, core.OrderShipped,
		core.OrderDelivered, core.PaymentFailed, core.RefundIssued} {
		email, err := core.Render(tmpl, core.Email, d)
		if err != nil {
			t.Fatalf("%s email: %v", tmpl, err)
		}
		if email.Subject == "" || strings.ContainsAny(email.Subject, "\r\n") || email.Text == "" ||
			!strings.HasPrefix(email.HTML, "<!DOCTYPE html>") {
			t.Errorf("%s email: %+v", tmpl, email)
		}
		sms, err := core.Render(tmpl, core.SMS, d)
		if err != nil {
			t.Fatalf("%s sms: %v", tmpl, err)
		}
		if n := utf8.RuneCountInString(sms.Text); n > core.MaxSMS || n < 20 || sms.Subject != "" || sms.HTML != "" {
			t.Errorf("%s sms (%d characters): %+v", tmpl, n, sms)
		}
	}
}

func TestReasonsInWords(t *testing.T) {
	for code, want := range map[string]string{
		"OUT_OF_STOCK":       "some items were out of stock",
		"PAYMENT_DECLINED":   "the payment was declined",
		"PAYMENT_FAILED":     "the payment could not be processed",
		"CUSTOMER_CANCELLED": "you cancelled it",
		"":                   "it could not be completed",
	} {
		if got := core.CancelReason(code); got != want {
			t.Errorf("CancelReason(%q) = %q, want %q", code, got, want)
		}
	}
	if got := core.PaymentFailureReason("DECLINED", "Do not honor"); got != "Do not honor" {
		t.Errorf("the event's reason is not used: %q", got)
	}
	if got := core.PaymentFailureReason("INSUFFICIENT_FUNDS", ""); got != "the card has insufficient funds" {
		t.Errorf("no reason: %q", got)
	}
}

func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{3299, "EUR", "32.99 EUR"}, {5, "USD", "0.05 USD"}, {1200, "JPY", "1200 JPY"}, {1500, "KWD", "1.500 KWD"},
	} {
		if got := core.FormatMoney(c.minor, c.currency); got != c.want {
			t.Errorf("FormatMoney(%d, %s) = %q, want %q", c.minor, c.currency, got, c.want)
		}
	}
}
