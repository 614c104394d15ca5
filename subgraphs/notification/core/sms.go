package core

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SMS request body formats of an HTTPSMSSender.
const (
	SMSFormatJSON = "json" // {"to": "...", "body": "..."}
	SMSFormatForm = "form" // to=...&body=... (application/x-www-form-urlencoded)
)

// HTTPSMSOptions configure an HTTPSMSSender.
type HTTPSMSOptions struct {
	URL    string // the provider's send endpoint
	Token  string // sent as a bearer token when not empty
	Format string // json (default) or form
	Client *http.Client
}

// HTTPSMSSender sends texts through a provider's HTTP API: one POST per
// message, with the fields to and body. Any 2xx answer means accepted;
// anything else, or no answer, is an error, and the text is retried.
type HTTPSMSSender struct {
	opts HTTPSMSOptions
}

// NewHTTPSMSSender checks opts and returns the sender.
func NewHTTPSMSSender(opts HTTPSMSOptions) (*HTTPSMSSender, error) {
	if u, err := url.Parse(opts.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sms url %q: want an http(s) URL", opts.URL)
	}
	switch opts.Format {
	case "":
		opts.Format = SMSFormatJSON
	case SMSFormatJSON, SMSFormatForm:
	default:
		return nil, fmt.Errorf("sms format %q: want json or form", opts.Format)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &HTTPSMSSender{opts: opts}, nil
}

// Send posts m.Text to m.To.
func (s *HTTPSMSSender) Send(ctx context.Context, m Message) error {
	var body []byte
	var contentType string
	if s.opts.Format == SMSFormatForm {
		body = []byte(url.Values{"to": {m.To}, "body": {m.Text}}.Encode())
		contentType = "application/x-www-form-urlencoded"
	} else {
		body, _ = json.Marshal(map[string]string{"to": m.To, "body": m.Text})
		contentType = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	// Lets a provider that supports it recognise a retried message.
	req.Header.Set("Idempotency-Key", m.ID)
	if s.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("sms: provider answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
		// 400, 404, 422: the provider refuses this message (a number it
		// cannot reach, say). Auth errors, throttling and 5xx may pass
		// later, once the provider or our configuration is fixed.
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
			return Permanent(err)
		}
		return err
	}
	return nil
}
