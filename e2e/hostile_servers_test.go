package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// serverTimeouts are short, so that the test sees every server cut what
// it must within seconds.
var serverTimeouts = map[string]string{
	"MART_HTTP_READ_HEADER_TIMEOUT": "1s",
	"MART_HTTP_READ_TIMEOUT":        "2s",
	"MART_HTTP_WRITE_TIMEOUT":       "3s",
	"MART_HTTP_IDLE_TIMEOUT":        "1s",
}

// TestHostileServers is the server-level part of the hostile catalogue:
// requests that abuse the HTTP servers themselves rather than GraphQL,
// straight at the subgraphs (which are reachable in a deployment that
// forgets to hide them) and at the router. Every server cuts what it must,
// every component is still ready afterwards, a subscription opened before
// lived through it all, and the connections and goroutines the attacks
// held are gone.
func TestHostileServers(t *testing.T) {
	sys := systemtest.StartWith(t, serverTimeouts)
	admin := sys.Admin(t)
	p := create(t, sys, map[string]any{"sku": "HOSTILE-SRV-1", "name": "Kettle", "price": map[string]any{"amount": 2000, "currency": "USD"}}).Product
	hosts := componentHosts(sys)

	// A subscription through the router to the product subgraph, open while
	// the servers are attacked and for longer than every timeout.
	sub := systemtest.Client{URL: sys.RouterURL}.Subscribe(t,
		`subscription($id: ID!) { productChanged(id: $id) { price { amount } } }`, map[string]any{"id": p.ID})
	subscribed := time.Now()

	ready(t, sys)
	goroutines, fds := baseline()

	t.Run("oversized bodies straight at the subgraphs", func(t *testing.T) { oversizedBodies(t, sys) })
	t.Run("20,000 duplicate fields straight at the subgraphs", func(t *testing.T) { duplicateFields(t, sys) })
	// Each attack below runs against every component at once.
	t.Run("slow bodies", func(t *testing.T) {
		// 8 connections a component (56 in all), each sending its body a
		// byte every 50 ms: that would take 50 s; the read timeout is 2 s.
		attack(t, hosts, 8, slowBody)
	})
	t.Run("slow headers", func(t *testing.T) { attack(t, hosts, 3, slowHeaders) })
	t.Run("silent connections", func(t *testing.T) { attack(t, hosts, 3, silentConnection) })
	t.Run("idle keep-alive connections", func(t *testing.T) { attack(t, hosts, 3, idleKeepAlive) })

	// Every component is ready, and the router still answers.
	ready(t, sys)
	var out struct{ Product struct{ Name string } }
	admin.MustQuery(t, `query($id: ID!) { product(id: $id) { name } }`, map[string]any{"id": p.ID}, &out)
	if out.Product.Name != "Kettle" {
		t.Errorf("product through the router: %+v", out)
	}

	// The subscription opened before the attacks, longer ago than every
	// timeout, still delivers: websockets are exempt once upgraded, at the
	// router and at the subgraph.
	if wait := 4*time.Second - time.Since(subscribed); wait > 0 {
		time.Sleep(wait)
	}
	stillDelivers(t, admin, sub, p.ID, subscribed)

	// What the attacks held is released: the servers run in this process,
	// so its goroutines and file descriptors are theirs.
	settles(t, "goroutines", goroutines, 25, runtime.NumGoroutine)
	settles(t, "file descriptors", fds, 10, openFDs)
}

// oversizedBodies posts 30 MB to every subgraph, with and without a
// Content-Length: each refuses it as too large.
func oversizedBodies(t *testing.T, sys *systemtest.System) {
	big := bytes.Repeat([]byte("a"), 30<<20)
	for name, u := range sys.Services {
		for _, length := range []bool{true, false} {
			var body io.Reader = bytes.NewReader(big)
			if !length {
				body = chunked{body}
			}
			status, code, msg := postRaw(t, u, body)
			if status != http.StatusRequestEntityTooLarge || code != "PAYLOAD_TOO_LARGE" || msg != "request body exceeds the limit of 8388608 bytes" {
				t.Errorf("%s, 30 MB, length sent %v: %d %s %q, want 413 PAYLOAD_TOO_LARGE", name, length, status, code, msg)
			}
		}
	}
}

// duplicateFields sends every subgraph (and the product subgraph a
// nested list) a field repeated past the parser's token limit, refused by
// the parser, and under it, refused before validation.
func duplicateFields(t *testing.T, sys *systemtest.System) {
	rep := func(s string, n int) string { return strings.Repeat(s, n) }
	for name, u := range sys.Services {
		cases := map[string]string{
			// Over the token limit: refused by the parser.
			"20,000 __typename": "{ " + rep("__typename ", 20_000) + "}",
			// Under it, where validation alone took seconds: refused
			// before validation.
			"5,000 __typename": "{ " + rep("__typename ", 5_000) + "}",
		}
		want := map[string]string{"20,000 __typename": "GRAPHQL_PARSE_FAILED", "5,000 __typename": "QUERY_LIMIT_EXCEEDED"}
		if name == "product" {
			cases["20,000 cursor"] = "{ products { edges { " + rep("cursor ", 20_000) + "} } }"
			cases["5,000 cursor"] = "{ products { edges { " + rep("cursor ", 5_000) + "} } }"
			want["20,000 cursor"], want["5,000 cursor"] = "GRAPHQL_PARSE_FAILED", "QUERY_LIMIT_EXCEEDED"
		}
		for c, doc := range cases {
			b, _ := json.Marshal(map[string]string{"query": doc})
			status, code, msg := postRaw(t, u, bytes.NewReader(b))
			if status != http.StatusUnprocessableEntity || code != want[c] {
				t.Errorf("%s, %s: %d %s %q, want 422 %s", name, c, status, code, msg, want[c])
			}
		}
	}
}

// component is a server of the system: the router or a subgraph.
type component struct{ name, host string }

// componentHosts are the host:port of every component, by name.
func componentHosts(sys *systemtest.System) []component {
	var out []component
	for name, u := range allEndpoints(sys) {
		parsed, _ := url.Parse(u)
		out = append(out, component{name, parsed.Host})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// attack runs one perComponent times against every component at once and
// fails the test with every error, sorted.
func attack(t *testing.T, components []component, perComponent int, one func(host string) error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, c := range components {
		for i := range perComponent {
			wg.Go(func() {
				if err := one(c.host); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s #%d: %v", c.name, i, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
}

// slowBody sends a request whose 1,000-byte body comes a byte every
// 50 ms; the read timeout must cut it.
func slowBody(host string) error {
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", host); err != nil {
		return err
	}
	go func() {
		for range 1000 {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return serverCloses(conn, "MART_HTTP_READ_TIMEOUT")
}

// slowHeaders sends a request's headers a byte every 50 ms; the read
// header timeout must cut it.
func slowHeaders(host string) error {
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		for _, c := range []byte("GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: " + strings.Repeat("x", 1000)) {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return serverCloses(conn, "MART_HTTP_READ_HEADER_TIMEOUT")
}

// silentConnection connects and sends nothing; the read header timeout
// must cut it.
func silentConnection(host string) error {
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	return serverCloses(conn, "MART_HTTP_READ_HEADER_TIMEOUT")
}

// idleKeepAlive sends one request, reads its answer, and keeps the
// connection open; the idle timeout must cut it.
func idleKeepAlive(host string) error {
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		return fmt.Errorf("healthz: %d, close %v", resp.StatusCode, resp.Close)
	}
	return serverCloses(conn, "MART_HTTP_IDLE_TIMEOUT")
}

// stillDelivers raises the price of product id until a change arrives on
// sub, which must not have ended since subscribed.
func stillDelivers(t *testing.T, admin systemtest.Client, sub *systemtest.Subscription, id string, subscribed time.Time) {
	t.Helper()
	delivered := false
	for price := 2100; !delivered; price += 100 {
		if price > 3000 {
			t.Fatal("no price change arrived on the subscription")
		}
		admin.MustQuery(t, `mutation($id: ID!, $amount: Int!) { updateProduct(input: {id: $id, price: {amount: $amount, currency: "USD"}}) { product { id } } }`,
			map[string]any{"id": id, "amount": price}, nil)
		for !delivered {
			m, ok := sub.Poll(2 * time.Second)
			if !ok {
				break
			}
			var data struct {
				ProductChanged struct{ Price struct{ Amount int } }
			}
			if m.Type != "next" || len(m.Payload.Errors) > 0 || json.Unmarshal(m.Payload.Data, &data) != nil {
				t.Fatalf("the subscription ended %v after it began: %+v", time.Since(subscribed).Round(time.Millisecond), m)
			}
			delivered = data.ProductChanged.Price.Amount >= 2100
		}
	}
}

// postRaw posts body as JSON to url and returns the status and the first
// error's code and message.
func postRaw(t *testing.T, url string, body io.Reader) (status int, code, message string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", body)
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r systemtest.Response
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Errors) == 0 {
		return resp.StatusCode, "", clip(raw)
	}
	return resp.StatusCode, r.Errors[0].Code(), r.Errors[0].Message
}

// serverCloses reads whatever the server sends until it closes conn; an
// error if it has not within a few times the timeout that should close it
// (a server without one keeps the connection as long as the client wants).
func serverCloses(conn net.Conn, timeout string) error {
	d, _ := time.ParseDuration(serverTimeouts[timeout])
	_ = conn.SetReadDeadline(time.Now().Add(5 * d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("the server kept the connection open")
	}
	return nil
}

// ready checks /readyz of every component.
func ready(t *testing.T, sys *systemtest.System) {
	t.Helper()
	for name, u := range allEndpoints(sys) {
		resp, err := http.Get(strings.TrimSuffix(u, "/graphql") + "/readyz")
		if err != nil {
			t.Errorf("%s /readyz: %v", name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz: %d", name, resp.StatusCode)
		}
	}
}

// baseline returns the goroutines and file descriptors of the process once
// keep-alive connections from the last requests have idled out.
func baseline() (goroutines, fds int) {
	time.Sleep(1500 * time.Millisecond) // MART_HTTP_IDLE_TIMEOUT and a half
	http.DefaultClient.CloseIdleConnections()
	return runtime.NumGoroutine(), openFDs()
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// settles waits until count() is at most base+slack, and fails the test
// with the last count if it is not within 30 s.
func settles(t *testing.T, what string, base, slack int, count func() int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	n := count()
	for deadline := time.Now().Add(30 * time.Second); n > base+slack && time.Now().Before(deadline); n = count() {
		time.Sleep(200 * time.Millisecond)
	}
	if n > base+slack {
		t.Errorf("%s: %d after the attacks, %d before", what, n, base)
	} else {
		t.Logf("%s: %d after the attacks, %d before", what, n, base)
	}
}
