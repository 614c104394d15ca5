// Package notifytest runs, in tests, the real protocol peers the
// notification service talks to: an SMTP server (go-smtp) and an HTTP SMS
// provider, both keeping what they receive for the test to inspect.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	User string // who authenticated; "" when nobody did
	TLS  bool   // whether the session was encrypted
}

// SMTPOptions configure StartSMTP.
type SMTPOptions struct {
	Addr  string            // where to listen; default a free port
	TLS   *tls.Config       // when set, the server offers STARTTLS
	Users map[string]string // when set, the server offers PLAIN auth for these users
	// Refuse answers RCPT TO for these addresses with the given reply
	// code (550: no such mailbox; 450: try later).
	Refuse map[string]int
}

// SMTPServer is a running SMTP server.
type SMTPServer struct {
	Addr  string
	srv   *smtp.Server
	mu    sync.Mutex
	mails []Mail
	auths atomic.Int32
}

// StartSMTP starts an SMTP server, stopped when the test ends.
func StartSMTP(t testing.TB, o SMTPOptions) *SMTPServer {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatalf("notifytest: smtp listen: %v", err)
	}
	s := &SMTPServer{Addr: l.Addr().String()}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{server: s, users: o.Users, refuse: o.Refuse, tls: isTLS}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = o.TLS
	// Without TLS, offer AUTH anyway: the client must refuse to use it.
	s.srv.AllowInsecureAuth = o.TLS == nil
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Mails returns what the server accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Auths counts the AUTH attempts the server saw.
func (s *SMTPServer) Auths() int { return int(s.auths.Load()) }

type session struct {
	server *SMTPServer
	users  map[string]string
	refuse map[string]int
	tls    bool
	user   string
	mail   Mail
}

func (s *session) AuthMechanisms() []string {
	if s.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(_ string) (sasl.Server, error) { // PLAIN, the only mechanism offered
	s.server.auths.Add(1)
	return sasl.NewPlainServer(func(_, username, password string) error {
		if want, ok := s.users[username]; !ok || want != password {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.users != nil && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.mail = Mail{From: from, User: s.user, TLS: s.tls}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code := s.refuse[to]; code != 0 {
		return &smtp.SMTPError{Code: code, Message: "recipient refused"}
	}
	s.mail.To = append(s.mail.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mail.Data = b
	s.server.mu.Lock()
	s.server.mails = append(s.server.mails, s.mail)
	s.server.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.mail = Mail{} }
func (s *session) Logout() error { return nil }

// FreeAddr returns a local address nothing listens on (for now).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SelfSigned returns a server TLS configuration for 127.0.0.1 and
// localhost, and a client configuration that trusts it.
func SelfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// Parsed is a received message read as a mail client would.
type Parsed struct {
	Header   mail.Header
	Subject  string            // decoded
	Type     string            // top-level media type
	Parts    map[string]string // decoded body by media type, e.g. "text/html"
	Boundary string
}

// Parse reads m's headers and (quoted-printable) parts.
func (m Mail) Parse(t testing.TB) Parsed {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatalf("notifytest: not a mail message: %v\n%s", err, m.Data)
	}
	p := Parsed{Header: msg.Header, Parts: map[string]string{}}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("notifytest: subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("notifytest: content type: %v", err)
	}
	p.Type, p.Boundary = mt, params["boundary"]
	if !strings.HasPrefix(mt, "multipart/") {
		p.Parts[mt] = decode(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return p
	}
	mr := multipart.NewReader(msg.Body, p.Boundary)
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("notifytest: part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		p.Parts[pt] = decode(t, part.Header.Get("Content-Transfer-Encoding"), part)
	}
}

func decode(t testing.TB, encoding string, r io.Reader) string {
	t.Helper()
	if strings.EqualFold(encoding, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("notifytest: body: %v", err)
	}
	return string(b)
}

// Text is one text message the SMS provider accepted.
type Text struct {
	To, Body      string
	Authorization string
	ContentType   string
}

// SMSServer is a running SMS provider endpoint.
type SMSServer struct {
	URL        string
	mu         sync.Mutex
	texts      []Text
	fails      atomic.Int32
	failStatus atomic.Int32
}

// StartSMS starts an SMS provider accepting JSON or form posts with the
// fields to and body, stopped when the test ends.
func StartSMS(t testing.TB) *SMSServer {
	t.Helper()
	s := &SMSServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fails.Load() > 0 {
			s.fails.Add(-1)
			http.Error(w, "refused", int(s.failStatus.Load()))
			return
		}
		txt := Text{Authorization: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
		mt, _, _ := mime.ParseMediaType(txt.ContentType)
		switch mt {
		case "application/json":
			var body struct{ To, Body string }
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			txt.To, txt.Body = body.To, body.Body
		case "application/x-www-form-urlencoded":
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			txt.To, txt.Body = r.PostForm.Get("to"), r.PostForm.Get("body")
		default:
			http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
			return
		}
		s.mu.Lock()
		s.texts = append(s.texts, txt)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Texts returns what the provider accepted so far.
func (s *SMSServer) Texts() []Text {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Text(nil), s.texts...)
}

// FailNext makes the next n requests fail with 503.
func (s *SMSServer) FailNext(n int) { s.FailNextWith(n, http.StatusServiceUnavailable) }

// FailNextWith makes the next n requests fail with status.
func (s *SMSServer) FailNextWith(n, status int) {
	s.failStatus.Store(int32(status))
	s.fails.Store(int32(n))
}
