package core

import (
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"unicode/utf8"
)

// MaxSMS is the longest text message sent, in characters: one SMS.
const MaxSMS = 160

// Data is what a template may say.
type Data struct {
	Name     string // the recipient's name
	Email    string
	Subject  string // the email's subject, for the HTML title
	OrderID  string
	OrderRef string // short order reference for subjects and texts
	Lines    []LineView
	Items    int    // units ordered, all lines together
	Total    string // the order total, formatted
	Amount   string // the payment or refund, formatted
	Reason   string // why, in words, for cancellations and failed payments
}

// LineView is an order line as templates show it.
type LineView struct {
	Name      string
	Quantity  int32
	UnitPrice string
	Total     string
}

// Content is a notification rendered for its channel: Subject, Text and
// HTML for an email, Text alone for an SMS.
type Content struct {
	Subject string
	Text    string
	HTML    string
}

// source holds one template's wording. Subject, text and SMS are plain
// text (text/template); html is the body of the HTML part (html/template,
// which escapes whatever the data holds).
type source struct {
	subject, text, sms, html string
}

var sources = map[Template]source{
	Welcome: {
		subject: `Welcome to Online Mart, {{.Name}}`,
		text: `Hi {{.Name}},

Welcome to Online Mart! Your account is ready: sign in with {{.Email}} to start shopping.

The Online Mart team
`,
		sms:  `Welcome to Online Mart, {{.Name}}! Your account is ready.`,
		html: `<h1>Welcome, {{.Name}}!</h1><p>Your account is ready: sign in with <strong>{{.Email}}</strong> to start shopping.</p>`,
	},
	OrderConfirmed: {
		subject: `Your order {{.OrderRef}} is confirmed`,
		text: `Hi {{.Name}},

Thank you for your order. We have your payment and are preparing it.

Order {{.OrderID}}
{{range .Lines}}  {{.Quantity}} x {{.Name}} at {{.UnitPrice}}: {{.Total}}
{{end}}Total: {{.Total}}

The Online Mart team
`,
		sms: `Online Mart: order {{.OrderRef}} is confirmed, {{.Items}} item(s), total {{.Total}}.`,
		html: `<h1>Thank you for your order, {{.Name}}</h1>
<p>We have your payment and are preparing order {{.OrderID}}.</p>
<table cellpadding="4">
<tr><th align="left">Product</th><th align="right">Quantity</th><th align="right">Price</th><th align="right">Total</th></tr>
{{range .Lines}}<tr><td>{{.Name}}</td><td align="right">{{.Quantity}}</td><td align="right">{{.UnitPrice}}</td><td align="right">{{.Total}}</td></tr>
{{end}}<tr><td colspan="3"><strong>Total</strong></td><td align="right"><strong>{{.Total}}</strong></td></tr>
</table>`,
	},
	OrderCancelled: {
		subject: `Your order {{.OrderRef}} was cancelled`,
		text: `Hi {{.Name}},

Your order {{.OrderID}} was cancelled: {{.Reason}}.
You are not charged for it; any payment already taken is refunded.

The Online Mart team
`,
		sms:  `Online Mart: order {{.OrderRef}} was cancelled: {{.Reason}}.`,
		html: `<h1>Your order was cancelled</h1><p>Hi {{.Name}}, your order {{.OrderID}} was cancelled: {{.Reason}}.</p><p>You are not charged for it; any payment already taken is refunded.</p>`,
	},
	OrderShipped: {
		subject: `Your order {{.OrderRef}} is on its way`,
		text: `Hi {{.Name}},

Good news: your order {{.OrderID}} has shipped.

The Online Mart team
`,
		sms:  `Online Mart: order {{.OrderRef}} has shipped.`,
		html: `<h1>Your order is on its way</h1><p>Hi {{.Name}}, your order {{.OrderID}} has shipped.</p>`,
	},
	OrderDelivered: {
		subject: `Your order {{.OrderRef}} was delivered`,
		text: `Hi {{.Name}},

Your order {{.OrderID}} was delivered. Enjoy!

The Online Mart team
`,
		sms:  `Online Mart: order {{.OrderRef}} was delivered.`,
		html: `<h1>Your order was delivered</h1><p>Hi {{.Name}}, your order {{.OrderID}} was delivered. Enjoy!</p>`,
	},
	PaymentFailed: {
		subject: `Payment for order {{.OrderRef}} failed`,
		text: `Hi {{.Name}},

We could not take the payment{{if .Total}} of {{.Total}}{{end}} for your order {{.OrderID}}: {{.Reason}}.

The Online Mart team
`,
		sms:  `Online Mart: payment for order {{.OrderRef}} failed: {{.Reason}}.`,
		html: `<h1>Your payment failed</h1><p>Hi {{.Name}}, we could not take the payment{{if .Total}} of {{.Total}}{{end}} for your order {{.OrderID}}: {{.Reason}}.</p>`,
	},
	RefundIssued: {
		subject: `Refund of {{.Amount}} for order {{.OrderRef}}`,
		text: `Hi {{.Name}},

We refunded {{.Amount}} for your order {{.OrderID}}. It may take a few days to show on your statement.

The Online Mart team
`,
		sms:  `Online Mart: we refunded {{.Amount}} for order {{.OrderRef}}.`,
		html: `<h1>Your refund is on its way</h1><p>Hi {{.Name}}, we refunded <strong>{{.Amount}}</strong> for your order {{.OrderID}}. It may take a few days to show on your statement.</p>`,
	},
}

// layout wraps every HTML body.
const layout = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; color: #222;">
{{template "body" .}}
<p style="color: #888; font-size: 12px;">Online Mart. You can choose which messages we send you in your notification preferences.</p>
</body>
</html>
`

type parsed struct {
	subject, text, sms *texttemplate.Template
	html               *htmltemplate.Template
}

// templates are parsed once; a broken one is a programming error that any
// test rendering it catches.
var templates = func() map[Template]parsed {
	out := make(map[Template]parsed, len(sources))
	for name, s := range sources {
		txt := func(part, src string) *texttemplate.Template {
			return texttemplate.Must(texttemplate.New(string(name) + "." + part).Option("missingkey=error").Parse(src))
		}
		h := htmltemplate.Must(htmltemplate.New(string(name) + ".html").Parse(layout))
		htmltemplate.Must(h.New("body").Parse(s.html))
		out[name] = parsed{subject: txt("subject", s.subject), text: txt("text", s.text), sms: txt("sms", s.sms), html: h}
	}
	return out
}()

// Render renders template t for channel c.
func Render(t Template, c Channel, d Data) (Content, error) {
	p, ok := templates[t]
	if !ok {
		return Content{}, fmt.Errorf("no template %s", t)
	}
	exec := func(tt *texttemplate.Template) (string, error) {
		var b strings.Builder
		if err := tt.Execute(&b, d); err != nil {
			return "", fmt.Errorf("render %s: %w", tt.Name(), err)
		}
		return b.String(), nil
	}
	if c == SMS {
		s, err := exec(p.sms)
		return Content{Text: fitSMS(s)}, err
	}
	subject, err := exec(p.subject)
	if err != nil {
		return Content{}, err
	}
	// A subject is one header line, whatever a name holds.
	d.Subject = strings.Join(strings.Fields(subject), " ")
	text, err := exec(p.text)
	if err != nil {
		return Content{}, err
	}
	var h strings.Builder
	if err := p.html.Execute(&h, d); err != nil {
		return Content{}, fmt.Errorf("render %s.html: %w", t, err)
	}
	return Content{Subject: d.Subject, Text: text, HTML: h.String()}, nil
}

// fitSMS makes s one line of at most MaxSMS characters, cut with an
// ellipsis when longer (a long name, say).
func fitSMS(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= MaxSMS {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:MaxSMS-1])) + "…"
}

// cancelReasons are OrderStatusChanged reasons in words.
var cancelReasons = map[string]string{
	"OUT_OF_STOCK":       "some items were out of stock",
	"PAYMENT_DECLINED":   "the payment was declined",
	"PAYMENT_FAILED":     "the payment could not be processed",
	"CUSTOMER_CANCELLED": "you cancelled it",
}

// CancelReason says why an order was cancelled, for humans.
func CancelReason(code string) string {
	if r, ok := cancelReasons[code]; ok {
		return r
	}
	return "it could not be completed"
}

// paymentReasons are PaymentFailed codes in words, for events without a
// reason.
var paymentReasons = map[string]string{
	"DECLINED":           "the payment was declined",
	"INSUFFICIENT_FUNDS": "the card has insufficient funds",
	"PROCESSING_ERROR":   "the payment could not be processed",
}

// PaymentFailureReason says why a payment failed, for humans.
func PaymentFailureReason(code, reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return reason
	}
	if r, ok := paymentReasons[code]; ok {
		return r
	}
	return "the payment could not be processed"
}

// minorDigits are the currencies whose minor unit is not a hundredth.
var minorDigits = map[string]int{
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
	"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

// FormatMoney writes an amount in minor units as e.g. "12.50 EUR".
func FormatMoney(minor int64, currency string) string {
	digits, ok := minorDigits[currency]
	if !ok {
		digits = 2
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if digits == 0 {
		return fmt.Sprintf("%s%d %s", sign, minor, currency)
	}
	scale := int64(1)
	for range digits {
		scale *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, minor/scale, digits, minor%scale, currency)
}

// orderRef is the short reference of an order: the end of its id, which
// is the random part of a UUIDv7.
func orderRef(orderID string) string {
	if len(orderID) < 8 {
		return orderID
	}
	return "#" + strings.ToUpper(orderID[len(orderID)-8:])
}
