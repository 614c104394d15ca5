package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// splitFrameSubgraph serves subscriptions over graphql-transport-ws frame
// by frame. On subscribe it sends the stream's first event with the frame
// cut after its first two bytes, the rest pause later, as TCP may deliver
// any frame (and as a reader that is descheduled between two reads sees
// it); then a second event in one piece. Each event's payload is over 125
// bytes, so its header has an extended length: the cut falls inside the
// header.
func splitFrameSubgraph(t *testing.T, pause time.Duration) *httptest.Server {
	t.Helper()
	event := func(id, name string) []byte {
		p := product("p1")
		p["name"] = name + strings.Repeat(".", 200)
		b, _ := json.Marshal(map[string]any{"id": id, "type": "next", "payload": map[string]any{"data": map[string]any{"productChanged": p}}})
		return b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == "graphql-transport-ws" }}
		conn, _, _, err := up.Upgrade(r, w)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			data, err := wsutil.ReadClientText(conn)
			if err != nil {
				return
			}
			var msg wsMessage
			_ = json.Unmarshal(data, &msg)
			switch msg.Type {
			case "connection_init":
				_ = wsutil.WriteServerText(conn, []byte(`{"type":"connection_ack"}`))
			case "ping":
				_ = wsutil.WriteServerText(conn, []byte(`{"type":"pong"}`))
			case "subscribe":
				var frame bytes.Buffer
				_ = ws.WriteFrame(&frame, ws.NewTextFrame(event(msg.ID, "first")))
				_, _ = conn.Write(frame.Bytes()[:2])
				time.Sleep(pause)
				_, _ = conn.Write(frame.Bytes()[2:])
				_ = wsutil.WriteServerText(conn, event(msg.ID, "second"))
			case "complete":
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A subgraph's frame whose header arrives in two pieces is delivered whole.
// The engine's subscription client read the header under a 100 ms deadline
// and dropped the bytes it had read when the deadline passed mid-header:
// the event was lost without a trace, the stream fell out of step, and it
// recovered only after chewing through the rest of the frame (two bytes a
// poll tick), so the events after a quiet spell arrived again. Under load
// a router descheduled between the header's two reads for 100 ms does the
// same to a frame that arrived whole: the fan-out benchmark's subscriber
// that missed its first message (the current status) and got every later
// one.
func TestSubscriptionFrameSplitInsideHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub := splitFrameSubgraph(t, 500*time.Millisecond)
	g := startGraph(t, func(o *Options) { o.Subgraphs[0].RoutingURL = sub.URL + "/graphql" })
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	op, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id name } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: op}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		var m wsMessage
		for m.Type != "next" {
			if err := wsjson.Read(ctx, c, &m); err != nil {
				t.Fatalf("waiting for the %s event: %v", want, err)
			}
			if m.Type != "next" && m.Type != "pong" && m.Type != "ping" {
				t.Fatalf("waiting for the %s event: %s %s", want, m.Type, m.Payload)
			}
		}
		var p struct {
			Data struct{ ProductChanged struct{ Name string } }
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil || !strings.HasPrefix(p.Data.ProductChanged.Name, want) {
			t.Fatalf("want the %s event, got %s", want, m.Payload)
		}
	}
}

// Two identical subscriptions on one connection each get the stream from
// its start. The engine shares one upstream subscription between
// operations with the same forwarded headers; the second would join the
// first's stream midway and never see its first message (for an order,
// the current status).
func TestIdenticalSubscriptionsEachStartFromTheBeginning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	op, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id name } }`})
	names := map[string][]string{}
	read := func(until func() bool) {
		for !until() {
			var m wsMessage
			if err := wsjson.Read(ctx, c, &m); err != nil {
				t.Fatalf("reading: %v (so far %v)", err, names)
			}
			if m.Type != "next" {
				continue
			}
			var p struct {
				Data struct{ ProductChanged struct{ Name string } }
			}
			_ = json.Unmarshal(m.Payload, &p)
			names[m.ID] = append(names[m.ID], p.Data.ProductChanged.Name)
		}
	}
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: op}); err != nil {
		t.Fatal(err)
	}
	read(func() bool { return len(names["1"]) >= 3 })
	if err := wsjson.Write(ctx, c, wsMessage{ID: "2", Type: "subscribe", Payload: op}); err != nil {
		t.Fatal(err)
	}
	read(func() bool { return len(names["2"]) >= 1 })
	if names["1"][0] != "v1" || names["2"][0] != "v1" {
		t.Fatalf("first messages: subscription 1 %v, subscription 2 %v; want each to start at v1", names["1"], names["2"])
	}
}

// A subgraph that accepts the connection but never answers the websocket
// upgrade fails the subscription within the request timeout instead of
// leaving the client waiting forever.
func TestHungSubgraphUpgradeFailsTheSubscription(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			return
		}
		<-release
	}))
	t.Cleanup(func() { close(release); hung.Close() })
	g := startGraph(t, func(o *Options) {
		o.Subgraphs[0].RoutingURL = hung.URL + "/graphql"
		o.RequestTimeout = 500 * time.Millisecond
	})
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	op, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p1") { id } }`})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: op}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(ctx, t, c, "error", "next", "complete")
	if m.Type == "complete" || !strings.Contains(string(m.Payload), `"code":"SUBGRAPH_UNAVAILABLE"`) {
		t.Fatalf("got %s %s, want SUBGRAPH_UNAVAILABLE", m.Type, m.Payload)
	}
}
