package graph_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlerr"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"

	"github.com/onlinemart/mart/internal/events"
	"github.com/uptrace/bun"
)

type placed struct {
	PlaceOrder struct {
		Order *struct {
			ID, Status   string
			StatusReason *string
			Total        money
			Lines        []struct {
				Product              struct{ ID string }
				Quantity             int
				UnitPrice, LineTotal money
			}
			ShippingAddress struct {
				Name, Line1, City, PostalCode, Country string
				Line2                                  *string
			}
			History []struct {
				Status string
				Reason *string
			}
		}
		UserErrors []userError
	}
}

// placeOrder: signed in only; bad input is a userError naming the field;
// a good order comes back priced, PENDING, with its product as a reference
// for the router; the same idempotency key returns it again.
func TestPlaceOrder(t *testing.T) {
	e := newEnv(t, false)
	mug := e.product("Mug", 1250)

	r := e.as(auth.Principal{}).Query(t, placeOp, map[string]any{"in": placeInput(mug, 1)}, nil)
	if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Unauthenticated {
		t.Fatalf("anonymous: %+v", r.Errors)
	}

	var out placed
	e.as(alice).MustQuery(t, placeOp, map[string]any{"in": placeInput(mug, 101)}, &out)
	if out.PlaceOrder.Order != nil || len(out.PlaceOrder.UserErrors) != 1 ||
		!reflect.DeepEqual(out.PlaceOrder.UserErrors[0].Field, []string{"input", "lines", "0", "quantity"}) ||
		out.PlaceOrder.UserErrors[0].Code != "OUT_OF_RANGE" {
		t.Fatalf("quantity 101: %+v", out.PlaceOrder)
	}
	in := placeInput(mug, 1)
	in["lines"] = append(in["lines"].([]any), map[string]any{"productId": e.product("Cup", 300), "quantity": 1})
	in["shippingAddress"].(map[string]any)["country"] = "Germany"
	e.as(alice).MustQuery(t, placeOp, map[string]any{"in": in}, &out)
	if len(out.PlaceOrder.UserErrors) != 1 || out.PlaceOrder.UserErrors[0].Code != "INVALID" ||
		!reflect.DeepEqual(out.PlaceOrder.UserErrors[0].Field, []string{"input", "shippingAddress", "country"}) {
		t.Fatalf("country: %+v", out.PlaceOrder)
	}

	in["shippingAddress"].(map[string]any)["country"] = "de"
	in["idempotencyKey"] = "cart-42"
	in["lines"].([]any)[0].(map[string]any)["quantity"] = 2
	e.as(alice).MustQuery(t, placeOp, map[string]any{"in": in}, &out)
	o := out.PlaceOrder.Order
	if o == nil || len(out.PlaceOrder.UserErrors) != 0 {
		t.Fatalf("placeOrder: %+v", out.PlaceOrder)
	}
	if o.Status != "PENDING" || o.StatusReason != nil || o.Total != (money{2800, "EUR"}) || len(o.Lines) != 2 ||
		o.Lines[0].Product.ID != mug || o.Lines[0].Quantity != 2 || o.Lines[0].UnitPrice != (money{1250, "EUR"}) ||
		o.Lines[0].LineTotal != (money{2500, "EUR"}) || o.ShippingAddress.Country != "DE" || o.ShippingAddress.Line2 != nil ||
		len(o.History) != 1 || o.History[0].Status != "PENDING" {
		t.Errorf("order %+v", o)
	}
	first := o.ID
	e.as(alice).MustQuery(t, placeOp, map[string]any{"in": in}, &out)
	if out.PlaceOrder.Order == nil || out.PlaceOrder.Order.ID != first {
		t.Errorf("repeat with the key placed %+v, want %s", out.PlaceOrder.Order, first)
	}
}

// An order is visible to its customer and admins: others get null, one at
// a time or as entities (resolved in one query however many). User.orders
// is for the user themself and admins (others: FORBIDDEN); Query.orders is
// for admins.
func TestOrderVisibility(t *testing.T) {
	e := newEnv(t, false)
	mug := e.product("Mug", 1250)
	var aliceOrders []string
	for range 3 {
		aliceOrders = append([]string{e.place(alice, mug)}, aliceOrders...)
	}
	bobs := e.place(bob, mug)

	orderOf := func(p auth.Principal, id string) *struct{ ID string } {
		t.Helper()
		var out struct{ Order *struct{ ID string } }
		e.as(p).MustQuery(t, `query($id: ID!) { order(id: $id) { id } }`, map[string]any{"id": id}, &out)
		return out.Order
	}
	if orderOf(alice, aliceOrders[0]) == nil || orderOf(admin, aliceOrders[0]) == nil {
		t.Error("alice or an admin cannot see alice's order")
	}
	if orderOf(bob, aliceOrders[0]) != nil || orderOf(auth.Principal{}, aliceOrders[0]) != nil || orderOf(alice, "nope") != nil {
		t.Error("an order is visible to someone else")
	}

	entities := func(p auth.Principal) []string {
		t.Helper()
		var reps []map[string]any
		for _, id := range append(aliceOrders, bobs) {
			reps = append(reps, map[string]any{"__typename": "Order", "id": id})
		}
		var out struct {
			Entities []*struct {
				ID    string
				Lines []struct{ Quantity int }
			}
		}
		e.as(p).MustQuery(t, `query($r: [_Any!]!) { entities: _entities(representations: $r) { ... on Order { id lines { quantity } history { status } } } }`,
			map[string]any{"r": reps}, &out)
		ids := make([]string, len(out.Entities))
		for i, o := range out.Entities {
			if o != nil && len(o.Lines) == 1 {
				ids[i] = o.ID
			}
		}
		return ids
	}
	before := e.reads.Load()
	if got := entities(admin); !reflect.DeepEqual(got, append(aliceOrders, bobs)) {
		t.Errorf("admin's entities %v", got)
	}
	if n := e.reads.Load() - before; n != 1 {
		t.Errorf("%d queries of orders for 4 entities, want 1", n)
	}
	if got := entities(bob); !reflect.DeepEqual(got, []string{"", "", "", bobs}) {
		t.Errorf("bob's entities %v", got)
	}
	before = e.reads.Load()
	if got := entities(auth.Principal{}); !reflect.DeepEqual(got, []string{"", "", "", ""}) {
		t.Errorf("anonymous entities %v", got)
	}
	if e.reads.Load() != before {
		t.Error("orders were looked up for a caller who may see none")
	}

	const userOrders = `query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id orders(first: 2) { edges { node { id } cursor } pageInfo { hasNextPage endCursor } } } } }`
	type conn struct {
		Edges []struct {
			Node struct{ ID string }
		}
		PageInfo struct{ HasNextPage bool }
	}
	var users struct {
		Entities []*struct{ Orders conn } `json:"_entities"`
	}
	rep := map[string]any{"r": []any{map[string]any{"__typename": "User", "id": alice.UserID}}}
	for _, p := range []auth.Principal{alice, admin} {
		e.as(p).MustQuery(t, userOrders, rep, &users)
		if c := users.Entities[0].Orders; len(c.Edges) != 2 || c.Edges[0].Node.ID != aliceOrders[0] || !c.PageInfo.HasNextPage {
			t.Errorf("%s: alice's orders %+v", p.Role, c)
		}
	}
	if r := e.as(bob).Query(t, userOrders, rep, nil); len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Forbidden {
		t.Errorf("bob asks for alice's orders: %+v", r.Errors)
	}

	const allOrders = `query($f: OrderFilter) { orders(first: 10, filter: $f) { edges { node { id status } } } }`
	if r := e.as(alice).Query(t, allOrders, nil, nil); len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Forbidden {
		t.Errorf("customer lists all orders: %+v", r.Errors)
	}
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnStockReservationFailed(ctx, tx, events.Meta{ID: events.NewID()}, &inventoryv1.StockReservationFailed{OrderId: bobs})
	})
	var list struct{ Orders conn }
	e.as(admin).MustQuery(t, allOrders, nil, &list)
	if len(list.Orders.Edges) != 4 {
		t.Errorf("admin lists %d orders", len(list.Orders.Edges))
	}
	e.as(admin).MustQuery(t, allOrders, map[string]any{"f": map[string]any{"status": "CANCELLED"}}, &list)
	if len(list.Orders.Edges) != 1 || list.Orders.Edges[0].Node.ID != bobs {
		t.Errorf("cancelled orders %+v", list.Orders)
	}
}

type orderPayload struct {
	Order *struct {
		Status       string
		StatusReason *string
	}
	UserErrors []userError
}

// cancelOrder is the customer's (or an admin's) until the order ships;
// markShipped and markDelivered are admins'.
func TestOrderCommands(t *testing.T) {
	e := newEnv(t, false)
	mug := e.product("Mug", 1250)
	run := func(p auth.Principal, mutation, id string) orderPayload {
		t.Helper()
		var out map[string]orderPayload
		e.as(p).MustQuery(t, `mutation($id: ID!) { m: `+mutation+`(input: {orderId: $id}) { order { status statusReason } userErrors { field message code } } }`,
			map[string]any{"id": id}, &out)
		return out["m"]
	}
	codeOf := func(p orderPayload) string {
		if p.Order != nil || len(p.UserErrors) != 1 {
			t.Fatalf("want one user error: %+v", p)
		}
		return p.UserErrors[0].Code
	}

	a := e.place(alice, mug)
	if c := codeOf(run(bob, "cancelOrder", a)); c != "NOT_FOUND" {
		t.Errorf("bob cancels alice's order: %s", c)
	}
	if p := run(alice, "cancelOrder", a); p.Order == nil || p.Order.Status != "CANCELLED" || *p.Order.StatusReason != "CUSTOMER_CANCELLED" {
		t.Errorf("alice cancels: %+v", p)
	}
	if c := codeOf(run(alice, "cancelOrder", a)); c != "INVALID_TRANSITION" {
		t.Errorf("cancel twice: %s", c)
	}

	b := e.place(alice, mug)
	for _, m := range []string{"markShipped", "markDelivered"} {
		r := e.as(alice).Query(t, `mutation($id: ID!) { `+m+`(input: {orderId: $id}) { userErrors { code } } }`, map[string]any{"id": b}, nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Forbidden {
			t.Errorf("customer %s: %+v", m, r.Errors)
		}
	}
	if c := codeOf(run(admin, "markShipped", b)); c != "INVALID_TRANSITION" {
		t.Errorf("ship a pending order: %s", c)
	}
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnPaymentSucceeded(ctx, tx, events.Meta{ID: events.NewID()}, &paymentv1.PaymentSucceeded{OrderId: b})
	})
	if p := run(admin, "markShipped", b); p.Order == nil || p.Order.Status != "SHIPPED" {
		t.Errorf("ship: %+v", p)
	}
	if c := codeOf(run(alice, "cancelOrder", b)); c != "INVALID_TRANSITION" {
		t.Errorf("cancel a shipped order: %s", c)
	}
	if p := run(admin, "markDelivered", b); p.Order == nil || p.Order.Status != "DELIVERED" {
		t.Errorf("deliver: %+v", p)
	}
	var out struct {
		Order struct{ History []struct{ Status string } }
	}
	e.as(alice).MustQuery(t, `query($id: ID!) { order(id: $id) { history { status at } } }`, map[string]any{"id": b}, &out)
	var got []string
	for _, h := range out.Order.History {
		got = append(got, h.Status)
	}
	if want := []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED", "SHIPPED", "DELIVERED"}; !reflect.DeepEqual(got, want) {
		t.Errorf("history %v", got)
	}
	if o, _ := e.orders.Get(context.Background(), admin, b); o.Status != core.Delivered {
		t.Errorf("stored %s", o.Status)
	}
}
