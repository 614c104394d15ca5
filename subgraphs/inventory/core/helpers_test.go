package core_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/inbox/inboxtest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
)

// env is one test's inventory database with the inventory over it. Events
// are handed to the handlers directly, each in its own transaction as the
// inbox would (which, being keyed by event id, never skips them here: a
// "redelivery" in these tests is the same event under a new id, the case
// the handlers themselves must absorb).
type env struct {
	t   *testing.T
	db  *pgtest.Database
	inv *core.Inventory
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t, "inventory")
	e := &env{t: t, db: db, inv: core.NewInventory(db.DB, core.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})}
	t.Cleanup(e.checkLedger)
	return e
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// handle runs the handler of msg in a transaction of its own.
func (e *env) handle(msg proto.Message) error {
	var h inbox.Handlers
	e.inv.RegisterHandlers(&h)
	return inboxtest.Deliver(e.db.DB, &h, "", msg)
}

func (e *env) mustHandle(msg proto.Message) {
	e.t.Helper()
	if err := e.handle(msg); err != nil {
		e.t.Fatalf("handle %s: %v", events.TypeOf(msg), err)
	}
}

// product creates a product's stock row and receives onHand units.
func (e *env) product(onHand int) string {
	e.t.Helper()
	id := newID()
	e.mustHandle(&productv1.ProductCreated{Product: &productv1.Product{Id: id, Sku: "SKU-" + id[:8]}})
	if onHand > 0 {
		e.adjust(id, onHand)
	}
	return id
}

// adjust changes on_hand by delta, which must succeed.
func (e *env) adjust(productID string, delta int) *core.Movement {
	e.t.Helper()
	m, errs, err := e.inv.Adjust(context.Background(), core.AdjustInput{
		ProductID: productID, Delta: delta, Reason: "test", IdempotencyKey: newID()})
	if err != nil || errs != nil {
		e.t.Fatalf("adjust %s by %d: %v %+v", productID, delta, err, errs)
	}
	return m
}

type qty struct {
	product string
	n       int32
}

func placed(orderID string, lines ...qty) *orderv1.OrderPlaced {
	m := &orderv1.OrderPlaced{OrderId: orderID, UserId: newID()}
	for _, l := range lines {
		m.Lines = append(m.Lines, &orderv1.Line{ProductId: l.product, Quantity: l.n})
	}
	return m
}

func statusChanged(orderID string, from, to orderv1.Status, reason string) *orderv1.OrderStatusChanged {
	return &orderv1.OrderStatusChanged{OrderId: orderID, OldStatus: from, NewStatus: to, Reason: reason}
}

func confirmed(orderID string) *orderv1.OrderStatusChanged {
	return statusChanged(orderID, orderv1.Status_STATUS_AWAITING_PAYMENT, orderv1.Status_STATUS_CONFIRMED, "")
}

func cancelledOrder(orderID, reason string) *orderv1.OrderStatusChanged {
	return statusChanged(orderID, orderv1.Status_STATUS_PENDING, orderv1.Status_STATUS_CANCELLED, reason)
}

// stock returns a product's (on_hand, reserved).
func (e *env) stock(productID string) (onHand, reserved int) {
	e.t.Helper()
	s, err := e.inv.Stocks(context.Background(), []string{productID})
	if err != nil {
		e.t.Fatal(err)
	}
	return s[0].OnHand, s[0].Reserved
}

func (e *env) wantStock(productID string, onHand, reserved int) {
	e.t.Helper()
	if h, r := e.stock(productID); h != onHand || r != reserved {
		e.t.Errorf("stock of %s: on hand %d, reserved %d; want %d, %d", productID, h, r, onHand, reserved)
	}
}

// kinds lists the kinds of a product's movements, oldest first.
func (e *env) kinds(productID string) []core.Kind {
	e.t.Helper()
	var ks []core.Kind
	if err := e.db.DB.NewRaw(`SELECT kind FROM stock_movements WHERE product_id = ? ORDER BY created_at, id`, productID).
		Scan(context.Background(), &ks); err != nil {
		e.t.Fatal(err)
	}
	return ks
}

// event is one decoded outbox event.
type event struct {
	key string
	msg proto.Message
}

// outbox returns the events waiting in the outbox, in order, decoded.
func (e *env) outbox() []event {
	e.t.Helper()
	var rows []struct {
		Key     string `bun:"key"`
		Type    string `bun:"type"`
		Payload []byte `bun:"payload"`
	}
	if err := e.db.DB.NewRaw(`SELECT key, type, payload FROM outbox ORDER BY seq`).Scan(context.Background(), &rows); err != nil {
		e.t.Fatal(err)
	}
	out := make([]event, len(rows))
	for i, r := range rows {
		var msg proto.Message
		switch r.Type {
		case events.TypeOf(&inventoryv1.StockReserved{}):
			msg = &inventoryv1.StockReserved{}
		case events.TypeOf(&inventoryv1.StockReservationFailed{}):
			msg = &inventoryv1.StockReservationFailed{}
		case events.TypeOf(&inventoryv1.StockLow{}):
			msg = &inventoryv1.StockLow{}
		default:
			e.t.Fatalf("unexpected event type %s", r.Type)
		}
		if err := proto.Unmarshal(r.Payload, msg); err != nil {
			e.t.Fatal(err)
		}
		out[i] = event{key: r.Key, msg: msg}
	}
	return out
}

// sagaEvents returns the outbox events about orderID.
func (e *env) sagaEvents(orderID string) []proto.Message {
	e.t.Helper()
	var out []proto.Message
	for _, ev := range e.outbox() {
		if ev.key == orderID {
			out = append(out, ev.msg)
		}
	}
	return out
}

// checkLedger fails the test unless every product's on_hand and reserved
// are the sums of its movements' deltas, and every movement's "after"
// values are the running sums up to it.
func (e *env) checkLedger() {
	e.t.Helper()
	bad := e.db.Count(e.t, `SELECT count(*) FROM stock s LEFT JOIN (
			SELECT product_id, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved
			FROM stock_movements GROUP BY product_id) m USING (product_id)
		WHERE s.on_hand <> coalesce(m.on_hand, 0) OR s.reserved <> coalesce(m.reserved, 0)`)
	if bad > 0 {
		e.t.Errorf("%d products whose stock differs from the sum of their movements", bad)
	}
	bad = e.db.Count(e.t, `SELECT count(*) FROM (
			SELECT on_hand_after, reserved_after,
				sum(on_hand_delta) OVER w AS on_hand, sum(reserved_delta) OVER w AS reserved
			FROM stock_movements WINDOW w AS (PARTITION BY product_id ORDER BY created_at, id)) r
		WHERE on_hand_after <> on_hand OR reserved_after <> reserved`)
	if bad > 0 {
		e.t.Errorf("%d movements whose after values are not the running sums", bad)
	}
}
