package core_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/uptrace/bun"

	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// Saga events, as the inventory and payment services send them.
func (e *env) stockReserved(id string) {
	e.t.Helper()
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnStockReserved(ctx, tx, meta("mart.inventory.v1.StockReserved"), &inventoryv1.StockReserved{OrderId: id})
	})
}

func (e *env) stockFailed(id string) {
	e.t.Helper()
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnStockReservationFailed(ctx, tx, meta("mart.inventory.v1.StockReservationFailed"), &inventoryv1.StockReservationFailed{OrderId: id})
	})
}

func (e *env) paid(id string) {
	e.t.Helper()
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnPaymentSucceeded(ctx, tx, meta("mart.payment.v1.PaymentSucceeded"), &paymentv1.PaymentSucceeded{OrderId: id})
	})
}

func (e *env) paymentFailed(id, code string) {
	e.t.Helper()
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnPaymentFailed(ctx, tx, meta("mart.payment.v1.PaymentFailed"), &paymentv1.PaymentFailed{OrderId: id, Code: code})
	})
}

// The happy path and each way the saga cancels an order, with the reason.
func TestSagaSteps(t *testing.T) {
	for name, c := range map[string]struct {
		steps   func(e *env, id string)
		history []string
		events  []string
	}{
		"paid": {func(e *env, id string) { e.stockReserved(id); e.paid(id) },
			[]string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CONFIRMED:"}},
		"out of stock": {func(e *env, id string) { e.stockFailed(id) },
			[]string{"PENDING", "CANCELLED:OUT_OF_STOCK"},
			[]string{"PENDING>CANCELLED:OUT_OF_STOCK"}},
		"declined": {func(e *env, id string) { e.stockReserved(id); e.paymentFailed(id, "DECLINED") },
			[]string{"PENDING", "AWAITING_PAYMENT", "CANCELLED:PAYMENT_DECLINED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CANCELLED:PAYMENT_DECLINED"}},
		"insufficient funds": {func(e *env, id string) { e.stockReserved(id); e.paymentFailed(id, "INSUFFICIENT_FUNDS") },
			[]string{"PENDING", "AWAITING_PAYMENT", "CANCELLED:PAYMENT_DECLINED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CANCELLED:PAYMENT_DECLINED"}},
		"processing error": {func(e *env, id string) { e.stockReserved(id); e.paymentFailed(id, "PROCESSING_ERROR") },
			[]string{"PENDING", "AWAITING_PAYMENT", "CANCELLED:PAYMENT_FAILED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CANCELLED:PAYMENT_FAILED"}},

		// Redeliveries the inbox cannot recognise (a producer resent the
		// event with a new id) find the order past them and change nothing.
		"stock reserved twice": {func(e *env, id string) { e.stockReserved(id); e.stockReserved(id) },
			[]string{"PENDING", "AWAITING_PAYMENT"},
			[]string{"PENDING>AWAITING_PAYMENT:"}},
		"paid twice": {func(e *env, id string) { e.stockReserved(id); e.paid(id); e.paid(id); e.stockReserved(id) },
			[]string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CONFIRMED:"}},
		"reservation failed twice": {func(e *env, id string) { e.stockFailed(id); e.stockFailed(id) },
			[]string{"PENDING", "CANCELLED:OUT_OF_STOCK"},
			[]string{"PENDING>CANCELLED:OUT_OF_STOCK"}},

		// Out of order: payment's event overtakes inventory's (different
		// topics). PaymentSucceeded implies the stock was reserved, so the
		// order goes through AWAITING_PAYMENT to CONFIRMED at once, and the
		// late StockReserved is dropped.
		"paid before reserved": {func(e *env, id string) { e.paid(id); e.stockReserved(id) },
			[]string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CONFIRMED:"}},
		"payment failed before reserved": {func(e *env, id string) { e.paymentFailed(id, "DECLINED"); e.stockReserved(id) },
			[]string{"PENDING", "CANCELLED:PAYMENT_DECLINED"},
			[]string{"PENDING>CANCELLED:PAYMENT_DECLINED"}},

		// The customer was quicker: the saga's news about a cancelled order
		// is dropped (inventory releases and payment refunds on CANCELLED).
		"cancelled then reserved and paid": {func(e *env, id string) {
			e.cancel(id)
			e.stockReserved(id)
			e.paid(id)
			e.paymentFailed(id, "DECLINED")
		}, []string{"PENDING", "CANCELLED:CUSTOMER_CANCELLED"}, []string{"PENDING>CANCELLED:CUSTOMER_CANCELLED"}},
		"cancelled while awaiting payment, then paid": {func(e *env, id string) { e.stockReserved(id); e.cancel(id); e.paid(id) },
			[]string{"PENDING", "AWAITING_PAYMENT", "CANCELLED:CUSTOMER_CANCELLED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CANCELLED:CUSTOMER_CANCELLED"}},
		"cancelled then reservation failed": {func(e *env, id string) { e.cancel(id); e.stockFailed(id) },
			[]string{"PENDING", "CANCELLED:CUSTOMER_CANCELLED"}, []string{"PENDING>CANCELLED:CUSTOMER_CANCELLED"}},
		// Impossible pairs (both success and failure) keep the first.
		"paid then payment failed": {func(e *env, id string) {
			e.stockReserved(id)
			e.paid(id)
			e.paymentFailed(id, "DECLINED")
			e.stockFailed(id)
		},
			[]string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"},
			[]string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CONFIRMED:"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			o := e.place(alice, input(line(e.product("Mug", 1250, "EUR"), 1)))
			c.steps(e, o.ID)
			got := e.get(o.ID)
			if !reflect.DeepEqual(statuses(got), c.history) {
				t.Errorf("history %v, want %v", statuses(got), c.history)
			}
			if !reflect.DeepEqual(e.changes(), c.events) {
				t.Errorf("events %v, want %v", e.changes(), c.events)
			}
			now := string(got.Status)
			if got.Reason != nil {
				now += ":" + string(*got.Reason)
			}
			if want := c.history[len(c.history)-1]; now != want {
				t.Errorf("status %s, want %s", now, want)
			}
			for i := 1; i < len(got.History); i++ {
				if !got.History[i].At.After(got.History[i-1].At) {
					t.Errorf("history times do not increase: %+v", got.History)
				}
			}
		})
	}
}

func (e *env) cancel(id string) {
	e.t.Helper()
	if _, errs, err := e.orders.Cancel(context.Background(), alice, core.OrderIDInput{OrderID: id}); err != nil || errs != nil {
		e.t.Fatalf("cancel: %v %+v", err, errs)
	}
}

// Events about orders this service does not have, or that name none, are
// dropped without error: retrying them could never help.
func TestSagaDropsEventsForUnknownOrders(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"0193c1d4-0000-7000-8000-000000000404", "", "not-a-uuid"} {
		e.stockReserved(id)
		e.paid(id)
		e.paymentFailed(id, "DECLINED")
		e.stockFailed(id)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("%d events", n)
	}
}
