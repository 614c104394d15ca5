package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Message is one notification as a channel delivers it.
type Message struct {
	ID      string // the notification's id: the email's Message-ID, an SMS reference
	To      string // email address or phone number
	Subject string // email only
	Text    string // the plain-text email part, or the SMS
	HTML    string // the HTML email part
}

// Sender delivers messages over one channel. An error means not delivered
// (as far as the sender knows) and the message is tried again later,
// unless it is Permanent.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// permanentError is a refusal that no retry can change: this recipient
// does not exist or the provider rejects this message.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying would only repeat.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// NewSenders returns the senders that deliver through the SMTP server and
// the HTTP SMS provider described, or, where one has no address, senders
// that write each message to the log (the embedded default).
func NewSenders(smtp SMTPOptions, sms HTTPSMSOptions, log *slog.Logger) (map[Channel]Sender, error) {
	senders := map[Channel]Sender{}
	if smtp.Addr == "" {
		senders[Email] = LogSender{Channel: Email, Logger: log}
	} else {
		s, err := NewSMTPSender(smtp)
		if err != nil {
			return nil, err
		}
		senders[Email] = s
	}
	if sms.URL == "" {
		senders[SMS] = LogSender{Channel: SMS, Logger: log}
	} else {
		s, err := NewHTTPSMSSender(sms)
		if err != nil {
			return nil, err
		}
		senders[SMS] = s
	}
	return senders, nil
}

// LogSender "delivers" by writing the message to the log, for running
// without a mail server or SMS provider.
type LogSender struct {
	Channel Channel
	Logger  *slog.Logger
}

// Send logs m.
func (s LogSender) Send(ctx context.Context, m Message) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	attrs := []any{"channel", s.Channel, "id", m.ID, "to", m.To}
	if s.Channel == Email {
		attrs = append(attrs, "subject", m.Subject)
	}
	log.InfoContext(ctx, fmt.Sprintf("%s not sent, no provider configured; it says:\n%s", s.Channel, m.Text), attrs...)
	return nil
}
