package gqltest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Subscription is one GraphQL subscription over graphql-transport-ws.
type Subscription struct {
	t      testing.TB
	conn   *websocket.Conn
	events chan Message
}

// Message is what the server sent for the subscription: a result
// ("next"), errors ("error"), or the end ("complete").
type Message struct {
	Type    string
	Payload Response
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Subscribe opens a websocket to the client's endpoint, authenticates in
// connection_init when the client has a token (as the router expects), and
// starts the operation.
// It fails the test when the server does not acknowledge the connection.
func (c Client) Subscribe(t testing.TB, query string, vars map[string]any) *Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(c.URL, "http", "ws", 1),
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("subscribe: dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	init := map[string]any{}
	if c.Token != "" {
		init["Authorization"] = "Bearer " + c.Token
	}
	payload, _ := json.Marshal(init)
	if err := wsjson.Write(ctx, conn, wsMessage{Type: "connection_init", Payload: payload}); err != nil {
		t.Fatalf("subscribe: init: %v", err)
	}
	var ack wsMessage
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("subscribe: want connection_ack, got %+v (%v)", ack, err)
	}
	op, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err := wsjson.Write(ctx, conn, wsMessage{ID: "1", Type: "subscribe", Payload: op}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	s := &Subscription{t: t, conn: conn, events: make(chan Message, 64)}
	go s.read()
	return s
}

func (s *Subscription) read() {
	defer close(s.events)
	for {
		var m wsMessage
		if err := wsjson.Read(context.Background(), s.conn, &m); err != nil {
			return
		}
		switch m.Type {
		case "ping":
			_ = wsjson.Write(context.Background(), s.conn, wsMessage{Type: "pong"})
		case "next":
			var r Response
			_ = json.Unmarshal(m.Payload, &r)
			s.events <- Message{Type: m.Type, Payload: r}
		case "error":
			var errs []Error
			_ = json.Unmarshal(m.Payload, &errs)
			s.events <- Message{Type: m.Type, Payload: Response{Errors: errs}}
		case "complete":
			s.events <- Message{Type: m.Type}
			return
		}
	}
}

// Next returns the next message, or fails the test after timeout. A
// closed connection reads as "closed".
func (s *Subscription) Next(timeout time.Duration) Message {
	s.t.Helper()
	m, ok := s.Poll(timeout)
	if !ok {
		s.t.Fatalf("subscription: nothing within %s", timeout)
	}
	return m
}

// Poll is Next that reports a timeout instead of failing the test.
func (s *Subscription) Poll(timeout time.Duration) (Message, bool) {
	select {
	case m, ok := <-s.events:
		if !ok {
			return Message{Type: "closed"}, true
		}
		return m, true
	case <-time.After(timeout):
		return Message{}, false
	}
}
