package core

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// STARTTLS modes of an SMTPSender.
const (
	StartTLSAuto   = "auto"   // upgrade when the server offers it
	StartTLSAlways = "always" // refuse to send without it
	StartTLSNever  = "never"  // plain text (a local relay, say)
)

// SMTPOptions configure an SMTPSender.
type SMTPOptions struct {
	Addr string // host:port of the server
	// Username and Password authenticate with PLAIN, which is only ever
	// done over TLS; empty means no authentication.
	Username, Password string
	StartTLS           string // auto (default), always or never
	From               string // e.g. "Online Mart <no-reply@mart.local>"
	// TLSConfig is the base TLS configuration (trusted roots, say); its
	// ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	Hello     string // the name given in EHLO; default "localhost"
}

// SMTPSender delivers email to one SMTP server, a connection per message:
// a notification service sends too rarely to keep one open.
type SMTPSender struct {
	opts SMTPOptions
	host string
	from *mail.Address
	tls  *tls.Config
}

// NewSMTPSender checks opts and returns the sender.
func NewSMTPSender(opts SMTPOptions) (*SMTPSender, error) {
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: %w", opts.Addr, err)
	}
	from, err := mail.ParseAddress(opts.From)
	if err != nil {
		return nil, fmt.Errorf("smtp from %q: %w", opts.From, err)
	}
	switch opts.StartTLS {
	case "":
		opts.StartTLS = StartTLSAuto
	case StartTLSAuto, StartTLSAlways, StartTLSNever:
	default:
		return nil, fmt.Errorf("smtp starttls %q: want auto, always or never", opts.StartTLS)
	}
	if opts.Username != "" && opts.StartTLS == StartTLSNever {
		return nil, errors.New("smtp: authentication needs TLS, but starttls is never")
	}
	if opts.Hello == "" {
		opts.Hello = "localhost"
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return &SMTPSender{opts: opts, host: host, from: from, tls: cfg}, nil
}

// Send delivers m in one SMTP session.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msg, err := Compose(s.from, to, m, time.Now())
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	// The session ends with ctx: its deadline, or cancellation.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	// After QUIT the connection is closed already; after a failed step the
	// error returned says what went wrong, not the close.
	defer func() { _ = c.Close() }()
	if err := c.Hello(s.opts.Hello); err != nil {
		return fmt.Errorf("smtp: ehlo: %w", err)
	}
	if s.opts.StartTLS != StartTLSNever {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return fmt.Errorf("smtp: starttls: %w", err)
			}
		} else if s.opts.StartTLS == StartTLSAlways {
			return errors.New("smtp: the server does not offer STARTTLS")
		}
	}
	if s.opts.Username != "" {
		// Never send a password in the clear, whatever the server offers.
		if _, isTLS := c.TLSConnectionState(); !isTLS {
			return errors.New("smtp: not authenticating without TLS (the server did not offer STARTTLS)")
		}
		if err := c.Auth(smtp.PlainAuth("", s.opts.Username, s.opts.Password, s.host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp: mail from: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		// 5xx to RCPT: the server will not take mail for this address
		// (no such mailbox, relaying denied); 4xx may pass later.
		var reply *textproto.Error
		if errors.As(err, &reply) && reply.Code >= 500 {
			return Permanent(fmt.Errorf("smtp: rcpt to: %w", err))
		}
		return fmt.Errorf("smtp: rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: data: %w", err)
	}
	// Accepted once DATA is: a failed QUIT does not undo that.
	_ = c.Quit()
	return nil
}

// Compose writes m as an RFC 5322 message: multipart/alternative with the
// text and HTML parts (text alone when there is no HTML), both
// quoted-printable UTF-8, with its Message-ID derived from m.ID so a
// message sent twice reads as the same one.
func Compose(from, to *mail.Address, m Message, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	domain := "localhost"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 {
		domain = from.Address[i+1:]
	}
	header := func(k, v string) {
		// No header may smuggle in another.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+m.ID+"@"+domain+">")
	header("MIME-Version", "1.0")
	// RFC 3834: automatic mail, not to be auto-replied to.
	header("Auto-Submitted", "auto-generated")

	if m.HTML == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	// Least preferred first (RFC 2046): clients show the last they can.
	for _, p := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}
