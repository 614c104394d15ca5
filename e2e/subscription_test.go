package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// A client follows a product over a websocket through the router
// (graphql-transport-ws) and sees each change made by a mutation.
func TestProductChangedSubscriptionThroughRouter(t *testing.T) {
	sys := systemtest.Start(t)
	p := create(t, sys, map[string]any{"sku": "LIVE-1", "name": "Teapot", "price": map[string]any{"amount": 2000, "currency": "USD"}}).Product

	sub := systemtest.Client{URL: sys.RouterURL}.Subscribe(t,
		`subscription($id: ID!) { productChanged(id: $id) { id name price { amount } active } }`, map[string]any{"id": p.ID})
	type change struct {
		ProductChanged struct {
			Active bool
			Price  struct{ Amount int64 }
		}
	}
	read := func(m systemtest.Message) change {
		if m.Type != "next" || len(m.Payload.Errors) > 0 {
			t.Fatalf("subscription ended: %+v", m)
		}
		var c change
		_ = json.Unmarshal(m.Payload.Data, &c)
		return c
	}

	// The subscription is live once the subgraph has it, which the client
	// cannot see: change the price until a change arrives. Each event sends
	// the product's state at that moment, so an event still in flight may
	// show an older price: wait for the new one.
	updated := false
	for price := 2100; !updated; price += 100 {
		if price > 3000 {
			t.Fatal("no price change arrived on the subscription")
		}
		sys.Admin(t).MustQuery(t, `mutation($id: ID!, $amount: Int!) { updateProduct(input: {id: $id, price: {amount: $amount, currency: "USD"}}) { product { id } } }`,
			map[string]any{"id": p.ID, "amount": price}, nil)
		for !updated {
			m, ok := sub.Poll(2 * time.Second)
			if !ok {
				break
			}
			updated = read(m).ProductChanged.Price.Amount >= 2100
		}
	}

	sys.Admin(t).MustQuery(t, `mutation($id: ID!) { archiveProduct(input: {id: $id}) { product { id } } }`, map[string]any{"id": p.ID}, nil)
	for read(sub.Next(30 * time.Second)).ProductChanged.Active {
	}
}
