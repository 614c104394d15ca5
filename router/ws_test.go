package router

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialRouter opens a client websocket to the router with one subprotocol and
// completes the connection_init handshake with the given payload.
func dialRouter(ctx context.Context, t *testing.T, g *testGraph, subprotocol string, initPayload map[string]any) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(g.server.URL, "http") + "/graphql"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if c.Subprotocol() != subprotocol {
		t.Fatalf("router chose subprotocol %q, want %q", c.Subprotocol(), subprotocol)
	}
	payload, _ := json.Marshal(initPayload)
	if err := wsjson.Write(ctx, c, wsMessage{Type: "connection_init", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if m := readUntil(ctx, t, c, "connection_ack"); m.Type != "connection_ack" {
		t.Fatalf("got %s before connection_ack", m.Type)
	}
	return c
}

// readUntil returns the next message of one of the given types, skipping
// keep-alives.
func readUntil(ctx context.Context, t *testing.T, c *websocket.Conn, types ...string) wsMessage {
	t.Helper()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("reading %v: %v", types, err)
		}
		for _, typ := range types {
			if m.Type == typ {
				return m
			}
		}
		if m.Type != "ka" && m.Type != "ping" && m.Type != "pong" {
			t.Fatalf("unexpected message %s: %s", m.Type, m.Payload)
		}
	}
}

func TestSubscriptionsThroughRouter(t *testing.T) {
	protocols := []struct {
		name, start, data, stop string
	}{
		{"graphql-transport-ws", "subscribe", "next", "complete"},
		{"graphql-ws", "start", "data", "stop"},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g := startGraph(t, nil)
			c := dialRouter(ctx, t, g, p.name, map[string]any{"Authorization": "Bearer from-init"})

			sub, _ := json.Marshal(map[string]any{"query": `subscription($id: ID!) { productChanged(id: $id) { id name stock } }`, "variables": map[string]any{"id": "p9"}})
			if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: p.start, Payload: sub}); err != nil {
				t.Fatal(err)
			}
			for want := 1; want <= 3; want++ {
				m := readUntil(ctx, t, c, p.data, "error")
				var payload struct {
					Data struct {
						ProductChanged struct {
							ID, Name string
							Stock    int
						}
					}
				}
				if err := json.Unmarshal(m.Payload, &payload); err != nil || m.Type != p.data {
					t.Fatalf("event %d: %s %s", want, m.Type, m.Payload)
				}
				// Names come from the products subgraph, stock from inventory.
				if pc := payload.Data.ProductChanged; pc.ID != "p9" || pc.Name == "" || pc.Stock != 2 {
					t.Fatalf("event %d: %s", want, m.Payload)
				}
			}

			upgrades, inits := g.products.recordedUpgrades()
			if len(upgrades) != 1 {
				t.Fatalf("products subgraph saw %d websocket upgrades", len(upgrades))
			}
			if got := upgrades[0].Get("Authorization"); got != "Bearer from-init" {
				t.Fatalf("upstream upgrade Authorization = %q (init payload %s)", got, inits)
			}
			if got := upgrades[0].Get("Sec-WebSocket-Protocol"); got != "graphql-transport-ws" {
				t.Fatalf("upstream offered subprotocols %q", got)
			}

			if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: p.stop}); err != nil {
				t.Fatal(err)
			}
			_ = c.Close(websocket.StatusNormalClosure, "") // done: how the close goes is not under test
		})
	}
}

// A stream the subgraph completes is completed for the client, once: it
// is not started again (the engine's own executor re-ran it every second).
func TestSubscriptionCompletesWhenSubgraphCompletes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "last1") { id name } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m := readUntil(ctx, t, c, "next", "error", "complete")
		got = append(got, m.Type)
		if m.Type != "next" {
			break
		}
	}
	if strings.Join(got, " ") != "next next complete" {
		t.Fatalf("messages %v, want next next complete", got)
	}
	// Nothing follows the complete, and the subgraph was asked once.
	quiet, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stop()
	var m wsMessage
	if err := wsjson.Read(quiet, c, &m); err == nil && m.Type != "ping" && m.Type != "pong" {
		t.Fatalf("after complete: %s %s", m.Type, m.Payload)
	}
	if upgrades, _ := g.products.recordedUpgrades(); len(upgrades) != 1 {
		t.Errorf("the subgraph saw %d subscriptions, want 1", len(upgrades))
	}
}

// Queries and mutations work over the websocket too: one next, then
// complete.
func TestQueryOverWebsocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	q, _ := json.Marshal(map[string]any{"query": `{ product(id: "p4") { id name } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "q", Type: "subscribe", Payload: q}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(ctx, t, c, "next", "error")
	if m.Type != "next" || !strings.Contains(string(m.Payload), `"name":"Product p4"`) {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
	if m := readUntil(ctx, t, c, "complete", "next", "error"); m.Type != "complete" || m.ID != "q" {
		t.Fatalf("got %s %s after the result", m.Type, m.Payload)
	}
}

func TestWebsocketQueryLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, func(o *Options) { o.MaxAliases = 1 })
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { a: id b: name } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(ctx, t, c, "error", "next")
	if m.Type != "error" || !strings.Contains(string(m.Payload), "2 aliases") || !strings.Contains(string(m.Payload), `"code":"QUERY_LIMIT_EXCEEDED"`) {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
}

func TestCloseStopsSubscriptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id name } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	readUntil(ctx, t, c, "next")

	closed := make(chan error, 1)
	go func() { closed <- g.router.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	// The client sees its connection end rather than events forever.
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c, &m); err != nil {
			if ctx.Err() != nil {
				t.Fatal("connection still open after Close")
			}
			return
		}
	}
}

func TestSubscriptionRefusedBySubgraph(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A subgraph that refuses the upgrade, as ours do for a token they reject.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	g := startGraph(t, func(o *Options) { o.Subgraphs[0].RoutingURL = refusing.URL + "/graphql" })
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(ctx, t, c, "next", "error")
	if !strings.Contains(string(m.Payload), codeSubgraphUnavailable) {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
	// The router is still up.
	if res := postQuery(t, g.server, `{ product(id: "p1") { id } }`, nil); res.status != http.StatusOK {
		t.Fatalf("router after the refused subscription: %d %s", res.status, res.body)
	}
}

// rawConn is a client websocket at the frame level, to send what
// ordinary clients do not: oversized and fragmented frames.
type rawConn struct {
	net.Conn
	r io.Reader
}

func (c rawConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func dialRaw(ctx context.Context, t *testing.T, g *testGraph) rawConn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(g.server.URL, "http") + "/graphql"
	conn, br, _, err := ws.Dialer{Protocols: []string{"graphql-transport-ws"}}.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := rawConn{Conn: conn, r: conn}
	if br != nil { // bytes the server sent right after the handshake
		c.r = br
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(c, []byte(`{"type":"connection_init"}`)); err != nil {
		t.Fatal(err)
	}
	if msg, err := wsutil.ReadServerText(c); err != nil || !strings.Contains(string(msg), "connection_ack") {
		t.Fatalf("connection_init: %s %v", msg, err)
	}
	return c
}

// closeCode reads until the server closes and returns its close code, or 0
// if a pong came first. It does not answer the close: the client may
// still be writing.
func closeCode(t *testing.T, c rawConn) ws.StatusCode {
	t.Helper()
	for {
		f, err := ws.ReadFrame(c)
		switch {
		case err != nil:
			t.Fatalf("no close frame: %v", err)
		case f.Header.OpCode == ws.OpClose:
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		case strings.Contains(string(f.Payload), `"pong"`):
			return 0
		}
	}
}

func writeFrames(c rawConn, parts ...string) error {
	for i, p := range parts {
		op := ws.OpContinuation
		if i == 0 {
			op = ws.OpText
		}
		if err := ws.WriteFrame(c, ws.MaskFrameInPlace(ws.NewFrame(op, i == len(parts)-1, []byte(p)))); err != nil {
			return err
		}
	}
	return nil
}

// A client message larger than the body limit closes the connection with
// 1009 (message too big), before the router reads it: whether it comes in
// one frame or in fragments. Below the limit, both are served.
func TestWebsocketMessageSizeLimit(t *testing.T) {
	const limit = 4096
	g := startGraph(t, func(o *Options) { o.MaxBodyBytes = limit })
	ping := func(size int) string {
		pad := strings.Repeat("a", size-len(`{"type":"ping","payload":{"x":""}}`))
		return `{"type":"ping","payload":{"x":"` + pad + `"}}`
	}
	split := func(s string, n int) []string {
		var parts []string
		for len(s) > n {
			parts, s = append(parts, s[:n]), s[n:]
		}
		return append(parts, s)
	}
	tests := []struct {
		name  string
		parts []string
		want  ws.StatusCode
	}{
		{"one frame at the limit", []string{ping(limit)}, 0},
		{"fragments up to the limit", split(ping(limit), 1000), 0},
		{"one frame over the limit", []string{ping(limit + 1)}, ws.StatusMessageTooBig},
		{"fragments over the limit", split(ping(limit+1), 1000), ws.StatusMessageTooBig},
		{"fragments far over the limit", split(ping(50*limit), limit), ws.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := dialRaw(ctx, t, g)
			_ = writeFrames(c, tt.parts...) // the router may close before the last part
			if got := closeCode(t, c); got != tt.want {
				t.Fatalf("close code %d, want %d", got, tt.want)
			}
		})
	}

	// A header announcing 1 GiB is refused at once: the router does not
	// wait for (or hold) the payload.
	t.Run("header of a 1 GiB frame", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := dialRaw(ctx, t, g)
		if err := ws.WriteHeader(c, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: 1 << 30}); err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(`{"type":"ping","payload":"`))
		if got := closeCode(t, c); got != ws.StatusMessageTooBig {
			t.Fatalf("close code %d, want %d", got, ws.StatusMessageTooBig)
		}
	})

	// The router goes on serving.
	if res := postQuery(t, g.server, `{ product(id: "p1") { id } }`, nil); res.status != http.StatusOK {
		t.Fatalf("after the oversized messages: %d %s", res.status, res.body)
	}
}

// graphql-transport-ws: a subscribe without an id is invalid, 4400.
func TestSubscribeWithoutIDCloses4400(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id } }`})
	if err := wsjson.Write(ctx, c, wsMessage{Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	for {
		var m wsMessage
		err := wsjson.Read(ctx, c, &m)
		if err == nil {
			continue // whatever came before the close
		}
		if got := websocket.CloseStatus(err); got != 4400 {
			t.Fatalf("closed with %d (%v), want 4400", got, err)
		}
		break
	}
	if upgrades, _ := g.products.recordedUpgrades(); len(upgrades) != 0 {
		t.Fatalf("the subgraph saw %d subscriptions", len(upgrades))
	}
}
