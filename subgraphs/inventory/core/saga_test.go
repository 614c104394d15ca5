package core_test

import (
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
)

// An order is reserved in full or not at all; a refusal names each short
// line with what was asked and what is available (0 for an unknown
// product).
func TestReservationIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	a, b := e.product(5), e.product(1)
	unknown := newID()

	failedOrder := newID()
	e.mustHandle(placed(failedOrder, qty{a, 2}, qty{b, 2}, qty{unknown, 1}))
	e.wantStock(a, 5, 0)
	e.wantStock(b, 1, 0)
	if n := e.db.Count(e.t, `SELECT count(*) FROM reservations`); n != 0 {
		t.Errorf("%d reservation lines after a refusal", n)
	}
	got := e.sagaEvents(failedOrder)
	f, ok := single[*inventoryv1.StockReservationFailed](got)
	if !ok || f.GetOrderId() != failedOrder {
		t.Fatalf("events %v, want one StockReservationFailed", got)
	}
	short := map[string][2]int32{}
	for _, l := range f.GetShortLines() {
		short[l.GetProductId()] = [2]int32{l.GetRequested(), l.GetAvailable()}
	}
	if len(short) != 2 || short[b] != [2]int32{2, 1} || short[unknown] != [2]int32{1, 0} {
		t.Errorf("short lines %v, want %s 2/1 and %s 1/0", short, b, unknown)
	}

	// Two lines of one product count together.
	ok1 := newID()
	e.mustHandle(placed(ok1, qty{a, 2}, qty{b, 1}, qty{a, 1}))
	e.wantStock(a, 5, 3)
	e.wantStock(b, 1, 1)
	got = e.sagaEvents(ok1)
	r, ok := single[*inventoryv1.StockReserved](got)
	if !ok {
		t.Fatalf("events %v, want one StockReserved", got)
	}
	items := map[string]int32{}
	for _, it := range r.GetItems() {
		items[it.GetProductId()] = it.GetQuantity()
	}
	if len(items) != 2 || items[a] != 3 || items[b] != 1 {
		t.Errorf("reserved items %v", items)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM reservations WHERE order_id = ? AND state = 'RESERVED'`, ok1); n != 2 {
		t.Errorf("%d reservation lines, want 2", n)
	}
	if !slices.Equal(e.kinds(a), []core.Kind{core.Receipt, core.Reservation}) {
		t.Errorf("movements of a: %v", e.kinds(a))
	}
}

// Twenty orders race for the last unit: exactly one gets it, the others
// are refused, and stock never goes negative. Orders sharing several
// products in different line orders do not deadlock.
func TestConcurrentOrdersForTheLastUnit(t *testing.T) {
	e := newEnv(t)
	last := e.product(1)
	x, y, z := e.product(100), e.product(100), e.product(100)

	orders := make([]string, 20)
	var wg sync.WaitGroup
	for i := range orders {
		orders[i] = newID()
		wg.Go(func() {
			if err := e.handle(placed(orders[i], qty{last, 1})); err != nil {
				t.Error(err)
			}
		})
		// Meanwhile, orders for three products listed in rotating order.
		lines := []qty{{x, 1}, {y, 1}, {z, 1}}
		slices.Reverse(lines[:i%3+1])
		wg.Go(func() {
			if err := e.handle(placed(newID(), lines...)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	var winners, losers int
	for _, o := range orders {
		for _, msg := range e.sagaEvents(o) {
			switch msg.(type) {
			case *inventoryv1.StockReserved:
				winners++
			case *inventoryv1.StockReservationFailed:
				losers++
			}
		}
	}
	if winners != 1 || losers != 19 {
		t.Errorf("%d reserved and %d refused, want 1 and 19", winners, losers)
	}
	e.wantStock(last, 1, 1)
	for _, p := range []string{x, y, z} {
		e.wantStock(p, 100, 20)
	}
}

// CONFIRMED commits a reservation; CANCELLED releases a reservation or
// restocks a commitment; each happens once per order, however often the
// event comes.
func TestCommitReleaseAndRestock(t *testing.T) {
	e := newEnv(t)
	p := e.product(10)

	kept := newID()
	e.mustHandle(placed(kept, qty{p, 3}))
	e.mustHandle(confirmed(kept))
	e.mustHandle(confirmed(kept))
	e.wantStock(p, 7, 0)

	returned := newID()
	e.mustHandle(placed(returned, qty{p, 2}))
	e.mustHandle(confirmed(returned))
	e.mustHandle(cancelledOrder(returned, "CUSTOMER_CANCELLED"))
	e.mustHandle(cancelledOrder(returned, "CUSTOMER_CANCELLED"))
	e.mustHandle(confirmed(returned)) // a late replay takes nothing again
	e.wantStock(p, 7, 0)

	dropped := newID()
	e.mustHandle(placed(dropped, qty{p, 4}))
	e.wantStock(p, 7, 4)
	e.mustHandle(cancelledOrder(dropped, "PAYMENT_DECLINED"))
	e.mustHandle(cancelledOrder(dropped, "PAYMENT_DECLINED"))
	e.mustHandle(confirmed(dropped)) // too late: the units went back
	e.wantStock(p, 7, 0)

	want := []core.Kind{core.Receipt,
		core.Reservation, core.Commit, // kept
		core.Reservation, core.Commit, core.Restock, // returned
		core.Reservation, core.Release} // dropped
	if got := e.kinds(p); !slices.Equal(got, want) {
		t.Errorf("movements %v\nwant      %v", got, want)
	}
	for order, state := range map[string]string{kept: "COMMITTED", returned: "RESTOCKED", dropped: "RELEASED"} {
		if n := e.db.Count(e.t, `SELECT count(*) FROM reservations WHERE order_id = ? AND state = ?`, order, state); n != 1 {
			t.Errorf("order %s: no line in state %s", order, state)
		}
	}
	var reason string
	if err := e.db.DB.QueryRow(`SELECT reason FROM stock_movements WHERE order_id = ? AND kind = 'RELEASE'`, dropped).Scan(&reason); err != nil || reason != "PAYMENT_DECLINED" {
		t.Errorf("release reason %q %v", reason, err)
	}
	// A failed reservation has nothing to give back.
	refused := newID()
	e.mustHandle(placed(refused, qty{p, 100}))
	e.mustHandle(cancelledOrder(refused, "OUT_OF_STOCK"))
	e.wantStock(p, 7, 0)
}

// Events about one order that arrive twice or in an unexpected order
// change stock as if each came once and in order.
func TestRedeliveredAndOutOfOrderEvents(t *testing.T) {
	e := newEnv(t)
	p := e.product(5)

	// OrderPlaced twice (another event id): reserved once, answered once.
	twice := newID()
	e.mustHandle(placed(twice, qty{p, 2}))
	e.mustHandle(placed(twice, qty{p, 2}))
	e.wantStock(p, 5, 2)
	if got := e.sagaEvents(twice); len(got) != 1 {
		t.Errorf("order placed twice: %d answers, want 1", len(got))
	}

	// CANCELLED before OrderPlaced: the order is never reserved and
	// nothing is emitted, so payment is never prompted to charge.
	early := newID()
	e.mustHandle(cancelledOrder(early, "CUSTOMER_CANCELLED"))
	e.mustHandle(placed(early, qty{p, 1}))
	e.mustHandle(confirmed(early))
	e.wantStock(p, 5, 2)
	if got := e.sagaEvents(early); len(got) != 0 {
		t.Errorf("cancelled-before-placed order answered %v", got)
	}

	// CONFIRMED for an order never placed takes nothing, and a later
	// OrderPlaced is still reserved normally.
	odd := newID()
	e.mustHandle(confirmed(odd))
	e.wantStock(p, 5, 2)
	e.mustHandle(placed(odd, qty{p, 1}))
	e.wantStock(p, 5, 3)

	// Statuses that do not concern stock, and unusable events, are ignored.
	e.mustHandle(statusChanged(twice, orderv1.Status_STATUS_PENDING, orderv1.Status_STATUS_AWAITING_PAYMENT, ""))
	e.mustHandle(statusChanged("not-a-uuid", orderv1.Status_STATUS_PENDING, orderv1.Status_STATUS_CANCELLED, ""))
	e.mustHandle(placed("not-a-uuid", qty{p, 1}))
	e.wantStock(p, 5, 3)
}

// StockLow is published once each time available stock falls below the
// threshold (5), keyed by product; not while it stays below, and again
// after it went back up.
func TestStockLowOncePerCrossing(t *testing.T) {
	e := newEnv(t)
	p := e.product(0) // starting at zero is not a crossing
	e.adjust(p, 9)
	o1, o2, o3 := newID(), newID(), newID()
	e.mustHandle(placed(o1, qty{p, 4})) // 5 available: not below
	e.mustHandle(placed(o2, qty{p, 1})) // 4: crossed
	e.mustHandle(placed(o3, qty{p, 2})) // 2: still below
	e.mustHandle(cancelledOrder(o2, "CUSTOMER_CANCELLED"))
	e.mustHandle(cancelledOrder(o3, "CUSTOMER_CANCELLED")) // 5 again
	e.adjust(p, -1)                                        // 4: crossed again

	var lows []*inventoryv1.StockLow
	for _, ev := range e.outbox() {
		if l, ok := ev.msg.(*inventoryv1.StockLow); ok {
			if ev.key != p {
				t.Errorf("StockLow keyed %s, want the product id", ev.key)
			}
			lows = append(lows, l)
		}
	}
	if len(lows) != 2 {
		t.Fatalf("%d StockLow events, want 2", len(lows))
	}
	for _, l := range lows {
		if l.GetProductId() != p || l.GetAvailable() != 4 || l.GetThreshold() != 5 {
			t.Errorf("StockLow %v", l)
		}
	}
}

// single returns the only message of msgs if it is a T.
func single[T proto.Message](msgs []proto.Message) (T, bool) {
	var zero T
	if len(msgs) != 1 {
		return zero, false
	}
	m, ok := msgs[0].(T)
	return m, ok
}
