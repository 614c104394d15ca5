package graph_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlerr"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

const followOp = `subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status reason at order { id status } } }`

// next reads one status message: "STATUS" or "STATUS:REASON", checking
// that the order field agrees.
func (s *subscription) next() string {
	s.t.Helper()
	m := s.read()
	if m.Type != "next" {
		s.t.Fatalf("want next, got %s %s", m.Type, m.Payload)
	}
	var p struct {
		Data struct {
			OrderStatusChanged struct {
				OrderID, Status, At string
				Reason              *string
				Order               *struct{ ID, Status string }
			}
		}
		Errors []any
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		s.t.Fatalf("payload %s: %v", m.Payload, err)
	}
	ev := p.Data.OrderStatusChanged
	if ev.OrderID == "" || ev.At == "" || ev.Order == nil || ev.Order.ID != ev.OrderID {
		s.t.Fatalf("message %s", m.Payload)
	}
	if ev.Reason != nil {
		return ev.Status + ":" + *ev.Reason
	}
	return ev.Status
}

// completes checks that the server ended the subscription.
func (s *subscription) completes() {
	s.t.Helper()
	if m := s.read(); m.Type != "complete" {
		s.t.Fatalf("want complete, got %s %s", m.Type, m.Payload)
	}
}

// refused checks that the subscription failed with code and sent no data.
// gqlgen reports a resolver's error as a result with errors and null data.
func (s *subscription) refused(code string) {
	s.t.Helper()
	m := s.read()
	var p struct {
		Data   json.RawMessage
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	_ = json.Unmarshal(m.Payload, &p)
	if m.Type != "next" || len(p.Errors) != 1 || p.Errors[0].Extensions.Code != code || string(p.Data) != "null" {
		s.t.Fatalf("want an error %s, got %s %s", code, m.Type, m.Payload)
	}
	s.completes()
}

// orderStatusChanged over a real broker and the outbox relay: the first
// message is the status now, then each transition in order, and the
// stream completes at a terminal status. Transitions already in the first
// message are not sent again even when their events arrive after it.
func TestOrderStatusChangedSubscription(t *testing.T) {
	e := newEnv(t, true)
	mug := e.product("Mug", 1250)
	ctx := context.Background()
	saga := func(fn func(ctx context.Context, tx bun.Tx, meta events.Meta) error) {
		t.Helper()
		e.handle(func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx, events.Meta{ID: events.NewID()}) })
	}

	// The relay is not running yet: the order's events wait in the outbox,
	// like events a slow relay has not published when a client subscribes.
	a := e.place(alice, mug)
	saga(func(ctx context.Context, tx bun.Tx, m events.Meta) error {
		return e.orders.OnStockReserved(ctx, tx, m, &inventoryv1.StockReserved{OrderId: a})
	})
	sub := e.subscribe(alice, a)
	if got := sub.next(); got != "AWAITING_PAYMENT" {
		t.Fatalf("first message %s, want the current status", got)
	}
	e.startRelay() // now PENDING→AWAITING_PAYMENT reaches the feed: old news

	saga(func(ctx context.Context, tx bun.Tx, m events.Meta) error {
		return e.orders.OnPaymentSucceeded(ctx, tx, m, &paymentv1.PaymentSucceeded{OrderId: a})
	})
	if got := sub.next(); got != "CONFIRMED" {
		t.Fatalf("after payment: %s", got)
	}
	if _, errs, err := e.orders.MarkShipped(ctx, admin, core.OrderIDInput{OrderID: a}); err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	if got := sub.next(); got != "SHIPPED" {
		t.Fatalf("after shipping: %s", got)
	}
	if _, errs, err := e.orders.MarkDelivered(ctx, admin, core.OrderIDInput{OrderID: a}); err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	if got := sub.next(); got != "DELIVERED" {
		t.Fatalf("after delivery: %s", got)
	}
	sub.completes()

	// A transition that goes through two statuses at once (payment's news
	// overtook inventory's) sends both, then a cancellation ends it.
	b := e.place(alice, mug)
	sub = e.subscribe(admin, b)
	if got := sub.next(); got != "PENDING" {
		t.Fatalf("first message %s", got)
	}
	saga(func(ctx context.Context, tx bun.Tx, m events.Meta) error {
		return e.orders.OnPaymentSucceeded(ctx, tx, m, &paymentv1.PaymentSucceeded{OrderId: b})
	})
	for _, want := range []string{"AWAITING_PAYMENT", "CONFIRMED"} {
		if got := sub.next(); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if _, errs, err := e.orders.Cancel(ctx, alice, core.OrderIDInput{OrderID: b}); err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	if got := sub.next(); got != "CANCELLED:CUSTOMER_CANCELLED" {
		t.Fatalf("after cancel: %s", got)
	}
	sub.completes()

	// A finished order: its status, then done.
	sub = e.subscribe(alice, b)
	if got := sub.next(); got != "CANCELLED:CUSTOMER_CANCELLED" {
		t.Fatalf("first message %s", got)
	}
	sub.completes()

	// Someone else's order, or none, is NOT_FOUND; anonymous callers are
	// refused before anything is looked up.
	e.subscribe(bob, a).refused(gqlerr.NotFound)
	e.subscribe(bob, "0193c1d4-0000-7000-8000-000000000404").refused(gqlerr.NotFound)
	e.subscribe(bob, "nope").refused(gqlerr.NotFound)
	e.subscribe(auth.Principal{}, a).refused(gqlerr.Unauthenticated)
}
