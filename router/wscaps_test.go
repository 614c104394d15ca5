package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// dialAs opens a websocket with extra headers; it returns the connection
// after connection_ack, or the close code the router answered with.
func dialAs(ctx context.Context, t *testing.T, g *testGraph, header http.Header) (*websocket.Conn, websocket.StatusCode) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(g.server.URL, "http") + "/graphql"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := wsjson.Write(ctx, c, wsMessage{Type: "connection_init"}); err != nil {
		return nil, websocket.CloseStatus(err)
	}
	var m wsMessage
	if err := wsjson.Read(ctx, c, &m); err != nil {
		return nil, websocket.CloseStatus(err)
	}
	if m.Type != "connection_ack" {
		t.Fatalf("got %s, want connection_ack", m.Type)
	}
	return c, 0
}

func subscribeProduct(ctx context.Context, t *testing.T, c *websocket.Conn, id string) {
	t.Helper()
	sub, _ := json.Marshal(map[string]any{"query": `subscription($id: ID!) { productChanged(id: $id) { id } }`, "variables": map[string]any{"id": "p1"}})
	if err := wsjson.Write(ctx, c, wsMessage{ID: id, Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
}

// One connection runs at most WSMaxOperations at once: the next subscribe
// gets an error message of its own, the others keep streaming, and a
// completed operation frees its place.
func TestWebsocketOperationsPerConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := startGraph(t, func(o *Options) { o.WSMaxOperations = 3 })
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	for i := 1; i <= 3; i++ {
		subscribeProduct(ctx, t, c, fmt.Sprint(i))
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		m := readUntil(ctx, t, c, "next")
		seen[m.ID] = true
	}
	subscribeProduct(ctx, t, c, "4")
	for {
		m := readUntil(ctx, t, c, "next", "error")
		if m.Type == "next" {
			continue // the three running streams
		}
		if m.ID != "4" || !strings.Contains(string(m.Payload), `"code":"TOO_MANY_OPERATIONS"`) || !strings.Contains(string(m.Payload), "already runs 3 operations") {
			t.Fatalf("error %s: %s", m.ID, m.Payload)
		}
		break
	}
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "complete"}); err != nil {
		t.Fatal(err)
	}
	// The place of 1 is free once the router has stopped it; until then a
	// subscribe may still be refused, so retry under new ids.
	for attempt := 5; ; attempt++ {
		subscribeProduct(ctx, t, c, fmt.Sprint(attempt))
		var m wsMessage
		for m.ID != fmt.Sprint(attempt) {
			m = readUntil(ctx, t, c, "next", "error", "complete")
		}
		if m.Type == "next" {
			break
		}
		if attempt > 50 {
			t.Fatalf("no place after complete: %s", m.Payload)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ups, _ := g.products.recordedUpgrades(); len(ups) > 5 {
		n := len(ups)
		t.Fatalf("%d upstream subscriptions for at most 4 accepted operations", n)
	}
}

// A client address holds at most WSMaxConns websockets; the next one is
// closed with 1013 (try again later), and a closed one frees its place.
func TestWebsocketConnectionsPerClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := startGraph(t, func(o *Options) { o.WSMaxConns = 2 })
	first, _ := dialAs(ctx, t, g, nil)
	if _, code := dialAs(ctx, t, g, nil); code != 0 {
		t.Fatalf("second connection closed with %d", code)
	}
	// Without a trusted proxy the client's own X-Forwarded-For is ignored.
	if _, code := dialAs(ctx, t, g, http.Header{"X-Forwarded-For": {"203.0.113.9"}}); code != websocket.StatusCode(closeTryAgainLater) {
		t.Fatalf("third connection: close %d, want %d", code, closeTryAgainLater)
	}
	_ = first.Close(websocket.StatusNormalClosure, "") // the loop below checks that its place is freed
	for attempt := 0; ; attempt++ {
		if _, code := dialAs(ctx, t, g, nil); code == 0 {
			break
		} else if attempt > 50 {
			t.Fatalf("no place after a close: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Behind a trusted proxy the client is the address the proxy appended.
func TestWebsocketConnectionsBehindProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := startGraph(t, func(o *Options) { o.WSMaxConns = 1; o.TrustedProxies = []string{"127.0.0.0/8", "::1"} })
	as := func(xff string) http.Header { return http.Header{"X-Forwarded-For": {xff}} }
	if _, code := dialAs(ctx, t, g, as("203.0.113.1")); code != 0 {
		t.Fatalf("client 1: %d", code)
	}
	if _, code := dialAs(ctx, t, g, as("203.0.113.2")); code != 0 {
		t.Fatalf("client 2: %d", code)
	}
	// Client 1 again, with a forged entry in front: still client 1.
	if _, code := dialAs(ctx, t, g, as("198.51.100.7, 203.0.113.1")); code != websocket.StatusCode(closeTryAgainLater) {
		t.Fatalf("client 1 twice: close %d", code)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := parseProxies([]string{"10.0.0.0/8", "192.0.2.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ remote, xff, want string }{
		{"198.51.100.1:5000", "203.0.113.1", "198.51.100.1"}, // not a proxy: its header is the client's own
		{"10.1.2.3:5000", "", "10.1.2.3"},
		{"10.1.2.3:5000", "203.0.113.1", "203.0.113.1"},
		{"10.1.2.3:5000", "203.0.113.1, 192.0.2.1", "203.0.113.1"}, // through two proxies
		{"10.1.2.3:5000", "6.6.6.6, 203.0.113.1", "203.0.113.1"},   // forged hop on the left
		{"10.1.2.3:5000", "garbage, 203.0.113.1", "203.0.113.1"},
		{"10.1.2.3:5000", "203.0.113.1, garbage", "10.1.2.3"}, // a proxy wrote nonsense: the proxy is the client
		{"[::1]:5000", "2001:db8::1", "2001:db8::1"},
		{"10.1.2.3:5000", "::ffff:203.0.113.5", "203.0.113.5"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := trusted.clientAddr(r); got != tt.want {
			t.Errorf("%s via %q: %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
	if _, err := parseProxies([]string{"kong"}); err == nil || !strings.Contains(err.Error(), `"kong"`) {
		t.Errorf("a name for a proxy: %v", err)
	}
}
