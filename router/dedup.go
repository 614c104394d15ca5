package router

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// dedupTransport sends identical subgraph queries that are in flight at the
// same time once, and gives every caller its own copy of the answer. Under
// load many clients ask for the same page (a catalog's first page, say);
// without this each of them costs the subgraph and its database a request.
//
// Identical means the same URL, body and Authorization (answers depend on
// who asks); the tracing headers, which differ per client request, are not
// compared. Only queries are shared: a mutation runs once per caller.
//
// The shared request belongs to no caller: it runs detached from the
// cancellation of whoever started it (bounded by timeout instead), so a
// client that hangs up does not fail the others waiting on the answer.
type dedupTransport struct {
	next    http.RoundTripper
	timeout time.Duration

	mu       sync.Mutex
	inFlight map[string]*sharedCall
}

type sharedCall struct {
	done chan struct{}
	resp *http.Response // body already read into body
	body []byte
	err  error
}

func newDedupTransport(next http.RoundTripper, timeout time.Duration) *dedupTransport {
	return &dedupTransport{next: next, timeout: timeout, inFlight: map[string]*sharedCall{}}
}

func (t *dedupTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil || req.Header.Get("Upgrade") != "" {
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if !isQuery(body) {
		return t.next.RoundTrip(req)
	}
	key := req.URL.String() + "\x00" + req.Header.Get("Authorization") + "\x00" + string(body)

	t.mu.Lock()
	c, ok := t.inFlight[key]
	if !ok {
		c = &sharedCall{done: make(chan struct{})}
		t.inFlight[key] = c
		go t.run(key, c, req)
	}
	t.mu.Unlock()
	select {
	case <-c.done:
		return c.copy(req)
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

// run makes the shared request and publishes its answer.
func (t *dedupTransport) run(key string, c *sharedCall, req *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), t.timeout)
	defer cancel()
	c.resp, c.err = t.next.RoundTrip(req.WithContext(ctx))
	if c.err == nil {
		c.body, c.err = io.ReadAll(c.resp.Body)
		c.resp.Body.Close()
	}
	t.mu.Lock()
	delete(t.inFlight, key)
	t.mu.Unlock()
	close(c.done)
}

// copy is the shared answer as a response of its own for req.
func (c *sharedCall) copy(req *http.Request) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	resp := *c.resp
	resp.Header = c.resp.Header.Clone()
	resp.Body = io.NopCloser(bytes.NewReader(c.body))
	resp.Request = req
	return &resp, nil
}

// isQuery tells a query's request body from a mutation's (or anything
// else's): the engine sends {"query":"<operation>","variables":…}, where a
// query's operation starts with "{" or "query".
func isQuery(body []byte) bool {
	var op struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(body, &op) != nil {
		return false
	}
	q := strings.TrimSpace(op.Query)
	return strings.HasPrefix(q, "{") || strings.HasPrefix(q, "query")
}
