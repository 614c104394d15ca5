package core_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/usererror"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

var allStatuses = []core.Status{core.Pending, core.AwaitingPayment, core.Confirmed, core.Shipped, core.Delivered, core.Cancelled}

// The status machine allows exactly the moves of the order saga, each going up
// in rank, and nothing leaves DELIVERED or CANCELLED.
func TestStatusMachine(t *testing.T) {
	legal := map[[2]core.Status]bool{
		{core.Pending, core.AwaitingPayment}:   true,
		{core.Pending, core.Cancelled}:         true,
		{core.AwaitingPayment, core.Confirmed}: true,
		{core.AwaitingPayment, core.Cancelled}: true,
		{core.Confirmed, core.Shipped}:         true,
		{core.Confirmed, core.Cancelled}:       true,
		{core.Shipped, core.Delivered}:         true,
	}
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			if got := core.CanTransition(from, to); got != legal[[2]core.Status{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
			if core.CanTransition(from, to) && to.Rank() <= from.Rank() {
				t.Errorf("%s → %s does not go up in rank", from, to)
			}
		}
		if want := from == core.Delivered || from == core.Cancelled; from.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", from, from.Terminal())
		}
		if core.StatusFromProto(from.Proto()) != from || from.Proto() == 0 {
			t.Errorf("%s does not round-trip through the event contract", from)
		}
	}
}

// reach places an order and takes it to status through legal moves.
func (e *env) reach(status core.Status) *core.Order {
	e.t.Helper()
	o := e.place(alice, input(line(e.product("Thing", 100, "EUR"), 1)))
	path := map[core.Status][]core.Status{
		core.Pending:         nil,
		core.AwaitingPayment: {core.AwaitingPayment},
		core.Confirmed:       {core.AwaitingPayment, core.Confirmed},
		core.Shipped:         {core.AwaitingPayment, core.Confirmed, core.Shipped},
		core.Delivered:       {core.AwaitingPayment, core.Confirmed, core.Shipped, core.Delivered},
		core.Cancelled:       {core.Cancelled},
	}[status]
	ctx := context.Background()
	for _, s := range path {
		var errs []usererror.UserError
		var err error
		switch s {
		case core.AwaitingPayment:
			e.handle(func(ctx context.Context, tx bun.Tx) error {
				return e.orders.OnStockReserved(ctx, tx, meta("mart.inventory.v1.StockReserved"), &inventoryv1.StockReserved{OrderId: o.ID})
			})
		case core.Confirmed:
			e.handle(func(ctx context.Context, tx bun.Tx) error {
				return e.orders.OnPaymentSucceeded(ctx, tx, meta("mart.payment.v1.PaymentSucceeded"), &paymentv1.PaymentSucceeded{OrderId: o.ID})
			})
		case core.Shipped:
			_, errs, err = e.orders.MarkShipped(ctx, admin, core.OrderIDInput{OrderID: o.ID})
		case core.Delivered:
			_, errs, err = e.orders.MarkDelivered(ctx, admin, core.OrderIDInput{OrderID: o.ID})
		case core.Cancelled:
			_, errs, err = e.orders.Cancel(ctx, alice, core.OrderIDInput{OrderID: o.ID})
		}
		if err != nil || errs != nil {
			e.t.Fatalf("to %s: %v %+v", s, err, errs)
		}
	}
	o = e.get(o.ID)
	if o.Status != status {
		e.t.Fatalf("reached %s, want %s", o.Status, status)
	}
	return o
}

// Every command from every status: the legal ones change the row, add a
// history entry and emit OrderStatusChanged together; the others are
// INVALID_TRANSITION and change nothing.
func TestCommandsFollowTheStatusMachine(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	commands := []struct {
		to     core.Status
		reason string
		run    func(auth.Principal, core.OrderIDInput) (*core.Order, []usererror.UserError, error)
	}{
		{core.Cancelled, "CUSTOMER_CANCELLED", func(p auth.Principal, in core.OrderIDInput) (*core.Order, []usererror.UserError, error) {
			return e.orders.Cancel(ctx, p, in)
		}},
		{core.Shipped, "", func(p auth.Principal, in core.OrderIDInput) (*core.Order, []usererror.UserError, error) {
			return e.orders.MarkShipped(ctx, p, in)
		}},
		{core.Delivered, "", func(p auth.Principal, in core.OrderIDInput) (*core.Order, []usererror.UserError, error) {
			return e.orders.MarkDelivered(ctx, p, in)
		}},
	}
	for _, from := range allStatuses {
		for _, c := range commands {
			t.Run(fmt.Sprintf("%s to %s", from, c.to), func(t *testing.T) {
				o := e.reach(from)
				events := len(e.outbox())
				who := admin
				if c.to == core.Cancelled {
					who = alice
				}
				got, errs, err := c.run(who, core.OrderIDInput{OrderID: o.ID})
				if err != nil {
					t.Fatal(err)
				}
				if !core.CanTransition(from, c.to) {
					checkRefused(t, e, o, events, got, errs)
					return
				}
				checkMoved(t, e, o, from, c.to, c.reason, got, errs)
			})
		}
	}
}

// checkRefused checks that a command refused o (as it was before the
// command, with events in the outbox) as INVALID_TRANSITION and changed
// nothing.
func checkRefused(t *testing.T, e *env, o *core.Order, events int, got *core.Order, errs []usererror.UserError) {
	t.Helper()
	after := e.get(o.ID)
	if got != nil || len(errs) != 1 || errs[0].Code != core.InvalidTransition || !reflect.DeepEqual(errs[0].Field, []string{"input", "orderId"}) {
		t.Fatalf("got %v %+v, want INVALID_TRANSITION", got, errs)
	}
	if after.Status != o.Status || len(after.History) != len(o.History) || len(e.outbox()) != events || !after.UpdatedAt.Equal(o.UpdatedAt) {
		t.Fatal("a refused transition changed something")
	}
}

// checkMoved checks that a command moved o (as it was before the command,
// in status from) to status to, for reason: in the row, a history entry
// and OrderStatusChanged together.
func checkMoved(t *testing.T, e *env, o *core.Order, from, to core.Status, reason string, got *core.Order, errs []usererror.UserError) {
	t.Helper()
	after := e.get(o.ID)
	history := len(o.History)
	if errs != nil || got == nil || got.Status != to {
		t.Fatalf("got %v %+v", got, errs)
	}
	if after.Status != to || !after.UpdatedAt.After(o.UpdatedAt) || len(after.History) != history+1 {
		t.Fatalf("stored %s, %d history entries", after.Status, len(after.History))
	}
	last := after.History[len(after.History)-1]
	if last.Status != to || last.Seq != history+1 || !last.At.Equal(after.UpdatedAt) {
		t.Errorf("history entry %+v", last)
	}
	changes := e.changes()
	if len(changes) == 0 || changes[len(changes)-1] != fmt.Sprintf("%s>%s:%s", from, to, reason) {
		t.Errorf("events %v", changes)
	}
	if (after.Reason == nil) != (reason == "") {
		t.Errorf("statusReason %v", after.Reason)
	}
}

// Another customer cannot cancel (nor learn about) an order: NOT_FOUND,
// like an order that does not exist. Admins may cancel anyone's; only
// admins' commands are guarded at the GraphQL edge, not here.
func TestCancelIsForTheOwnerOrAnAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.reach(core.Confirmed)
	for _, id := range []string{o.ID, "0193c1d4-0000-7000-8000-000000000404"} {
		got, errs, err := e.orders.Cancel(ctx, bob, core.OrderIDInput{OrderID: id})
		if err != nil || got != nil || len(errs) != 1 || errs[0].Code != usererror.NotFound {
			t.Fatalf("bob cancels %s: %v %v %+v", id, got, err, errs)
		}
	}
	if _, errs, _ := e.orders.Cancel(ctx, bob, core.OrderIDInput{OrderID: "nope"}); len(errs) != 1 || errs[0].Code != usererror.Invalid {
		t.Errorf("bad id: %+v", errs)
	}
	if e.get(o.ID).Status != core.Confirmed {
		t.Fatal("bob cancelled alice's order")
	}
	got, errs, err := e.orders.Cancel(ctx, admin, core.OrderIDInput{OrderID: o.ID})
	if err != nil || errs != nil || got.Status != core.Cancelled || *got.Reason != core.CustomerCancelled {
		t.Fatalf("admin cancel: %v %+v %+v", err, errs, got)
	}
	if !reflect.DeepEqual(statuses(got), []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED", "CANCELLED:CUSTOMER_CANCELLED"}) {
		t.Errorf("history %v", statuses(got))
	}
}
