package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/onlinemart/mart/internal/systemtest"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// A client follows a product over a websocket through the router
// (graphql-transport-ws) and sees each change made by a mutation.
func TestProductChangedSubscriptionThroughRouter(t *testing.T) {
	sys := systemtest.Start(t)
	p := create(t, sys, map[string]any{"sku": "LIVE-1", "name": "Teapot", "price": map[string]any{"amount": 2000, "currency": "USD"}}).Product

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(sys.RouterURL, "http://", "ws://", 1),
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	send := func(m wsMessage) {
		if err := wsjson.Write(ctx, conn, m); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	read := func() wsMessage {
		for {
			var m wsMessage
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				t.Fatalf("read: %v", err)
			}
			if m.Type != "ping" && m.Type != "pong" && m.Type != "ka" {
				return m
			}
		}
	}
	send(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)})
	if m := read(); m.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %+v", m)
	}
	sub, _ := json.Marshal(map[string]any{
		"query":     `subscription($id: ID!) { productChanged(id: $id) { id name price { amount } active } }`,
		"variables": map[string]any{"id": p.ID},
	})
	send(wsMessage{ID: "1", Type: "subscribe", Payload: sub})

	// The subscription is live once the subgraph has it; retry the first
	// change until an event arrives rather than guessing a delay.
	type next struct {
		Data struct {
			ProductChanged struct {
				Name   string
				Active bool
				Price  struct{ Amount int64 }
			}
		}
	}
	got := make(chan next, 4)
	go func() {
		for {
			var m wsMessage
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				close(got)
				return
			}
			if m.Type == "next" {
				var n next
				_ = json.Unmarshal(m.Payload, &n)
				got <- n
			} else if m.Type == "error" || m.Type == "complete" {
				t.Errorf("subscription ended: %+v %s", m, m.Payload)
			}
		}
	}()
	// Each event sends the product's state at that moment, so an event
	// still in flight from before the update may show the old price: wait
	// for the new one.
	updated := false
	for price := 2100; !updated && price < 3000; price += 100 {
		sys.Admin(t).MustQuery(t, `mutation($id: ID!, $amount: Int!) { updateProduct(input: {id: $id, price: {amount: $amount, currency: "USD"}}) { product { id } } }`,
			map[string]any{"id": p.ID, "amount": price}, nil)
		deadline := time.After(2 * time.Second)
		for !updated {
			select {
			case n, ok := <-got:
				if !ok {
					t.Fatal("connection closed")
				}
				updated = n.Data.ProductChanged.Price.Amount >= 2100
				continue
			case <-deadline:
			}
			break
		}
	}
	if !updated {
		t.Fatal("no price change arrived on the subscription")
	}
	sys.Admin(t).MustQuery(t, `mutation($id: ID!) { archiveProduct(input: {id: $id}) { product { id } } }`, map[string]any{"id": p.ID}, nil)
	for {
		select {
		case n, ok := <-got:
			if !ok {
				t.Fatal("connection closed")
			}
			if !n.Data.ProductChanged.Active {
				return // saw the archive
			}
		case <-ctx.Done():
			t.Fatal("archive never arrived on the subscription")
		}
	}
}
