package core

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/uuids"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// OnProductCreated gives a new product an empty stock row, so an admin can
// receive goods for it. A row that exists already is left alone.
func (inv *Inventory) OnProductCreated(ctx context.Context, tx bun.Tx, _ events.Meta, m *productv1.ProductCreated) error {
	id, ok := uuids.Canonical(m.GetProduct().GetId())
	if !ok {
		inv.log.WarnContext(ctx, "ProductCreated with an invalid product id, ignored", "product_id", id)
		return nil
	}
	_, err := tx.NewRaw(`INSERT INTO stock (product_id) VALUES (?) ON CONFLICT (product_id) DO NOTHING`, id).Exec(ctx)
	return err
}

// OnOrderPlaced reserves every line of the order or none, then answers
// StockReserved or StockReservationFailed (with the short lines; a product
// without stock has 0 available), keyed by the order id.
//
// Order rules: an order's events share a partition, so its OrderPlaced
// normally comes before any status change. If a CANCELLED came first (an
// OrderPlaced dead-lettered and replayed later, say), the order is closed:
// nothing is reserved and nothing is emitted, since no one waits for an
// answer about a cancelled order and payment must not be prompted to
// charge. An order seen placed before (a second OrderPlaced under another
// event id) changes nothing either.
func (inv *Inventory) OnOrderPlaced(ctx context.Context, tx bun.Tx, _ events.Meta, m *orderv1.OrderPlaced) error {
	orderID, ok := inv.orderID(ctx, m.GetOrderId(), "OrderPlaced")
	if !ok {
		return nil
	}
	prev, err := claimOrder(ctx, tx, orderID, reserved)
	if err != nil || prev != "" {
		if prev == cancelled {
			inv.log.InfoContext(ctx, "order cancelled before it was placed, not reserved", "order_id", orderID)
		}
		return err
	}
	lines := mergeLines(m.GetLines())
	var ids []string
	for _, l := range lines {
		if _, err := uuid.Parse(l.productID); err == nil {
			ids = append(ids, l.productID)
		}
	}
	// Locked in product order: concurrent orders queue on the rows they
	// share instead of deadlocking, and each sees what the last one left.
	stocks, err := lockStocks(ctx, tx, ids)
	if err != nil {
		return err
	}
	available := make(map[string]int, len(stocks))
	for _, s := range stocks {
		available[s.ProductID] = s.Available()
	}
	now := time.Now()
	var short []*inventoryv1.ShortLine
	for _, l := range lines {
		if l.quantity <= 0 || l.quantity > available[l.productID] {
			short = append(short, &inventoryv1.ShortLine{ProductId: l.productID,
				Requested: clamp32(l.quantity), Available: clamp32(available[l.productID])})
		}
	}
	if len(short) > 0 {
		if err := setOrderState(ctx, tx, orderID, failed); err != nil {
			return err
		}
		return inv.events.Add(ctx, tx, orderID, &inventoryv1.StockReservationFailed{
			OrderId: orderID, ShortLines: short, FailedAt: timestamppb.New(now)})
	}
	items := make([]*inventoryv1.Item, len(lines))
	rows := make([]reservationLine, len(lines))
	for i, l := range lines {
		if err := inv.move(ctx, tx, l.productID, &Movement{Kind: Reservation, ReservedDelta: l.quantity, OrderID: &orderID}); err != nil {
			return err
		}
		items[i] = &inventoryv1.Item{ProductId: l.productID, Quantity: int32(l.quantity)}
		rows[i] = reservationLine{OrderID: orderID, ProductID: l.productID, Quantity: l.quantity, State: reserved}
	}
	if len(rows) > 0 {
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return err
		}
	}
	return inv.events.Add(ctx, tx, orderID, &inventoryv1.StockReserved{
		OrderId: orderID, Items: items, ReservedAt: timestamppb.New(now)})
}

// OnOrderStatusChanged settles an order's reservation: CONFIRMED commits
// it, CANCELLED releases it (or restocks it when already committed). Other
// statuses do not concern stock.
func (inv *Inventory) OnOrderStatusChanged(ctx context.Context, tx bun.Tx, _ events.Meta, m *orderv1.OrderStatusChanged) error {
	status := m.GetNewStatus()
	if status != orderv1.Status_STATUS_CONFIRMED && status != orderv1.Status_STATUS_CANCELLED {
		return nil
	}
	orderID, ok := inv.orderID(ctx, m.GetOrderId(), "OrderStatusChanged")
	if !ok {
		return nil
	}
	if status == orderv1.Status_STATUS_CONFIRMED {
		return inv.confirm(ctx, tx, orderID)
	}
	return inv.cancel(ctx, tx, orderID, m.GetReason())
}

// confirm commits a reserved order: its units leave on_hand and reserved.
//
// Order rules: CONFIRMED follows payment, which follows our StockReserved,
// so it finds the order RESERVED. Found COMMITTED or RESTOCKED it is a
// replay of what was applied; found RELEASED the cancellation won and the
// units are no longer held; found nothing, nothing was reserved. None of
// these takes stock, and none is worth retrying.
func (inv *Inventory) confirm(ctx context.Context, tx bun.Tx, orderID string) error {
	prev, err := lockOrder(ctx, tx, orderID)
	if err != nil {
		return err
	}
	if prev != reserved {
		if prev != committed && prev != restocked {
			inv.log.WarnContext(ctx, "order confirmed without a reservation, nothing to commit", "order_id", orderID, "state", prev)
		}
		return nil
	}
	return inv.settle(ctx, tx, orderID, reserved, committed, Commit, nil)
}

// cancel gives back what a cancelled order holds: reserved units are
// released, committed ones restocked, each once.
//
// Order rules: a CANCELLED for an order never seen is remembered (state
// CANCELLED), so a later OrderPlaced reserves nothing. One for an order
// that failed to reserve, or was already released or restocked, changes
// nothing.
func (inv *Inventory) cancel(ctx context.Context, tx bun.Tx, orderID, reason string) error {
	prev, err := claimOrder(ctx, tx, orderID, cancelled)
	if err != nil {
		return err
	}
	why := &reason
	if reason == "" {
		why = nil
	}
	switch prev {
	case reserved:
		return inv.settle(ctx, tx, orderID, reserved, released, Release, why)
	case committed:
		return inv.settle(ctx, tx, orderID, committed, restocked, Restock, why)
	}
	return nil
}

// settle moves every line of an order from one state to the next,
// recording a movement of kind for each, and the order with them.
func (inv *Inventory) settle(ctx context.Context, tx bun.Tx, orderID string, from, to state, kind Kind, reason *string) error {
	var lines []reservationLine
	if err := tx.NewSelect().Model(&lines).Where("order_id = ? AND state = ?", orderID, from).
		Order("product_id").Scan(ctx); err != nil {
		return err
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	if _, err := lockStocks(ctx, tx, ids); err != nil {
		return err
	}
	for _, l := range lines {
		m := &Movement{Kind: kind, OrderID: &orderID, Reason: reason}
		switch kind {
		case Commit:
			m.OnHandDelta, m.ReservedDelta = -l.Quantity, -l.Quantity
		case Release:
			m.ReservedDelta = -l.Quantity
		case Restock:
			m.OnHandDelta = l.Quantity
		}
		if err := inv.move(ctx, tx, l.ProductID, m); err != nil {
			return err
		}
	}
	if _, err := tx.NewUpdate().Model((*reservationLine)(nil)).Set("state = ?", to).Set("updated_at = now()").
		Where("order_id = ? AND state = ?", orderID, from).Exec(ctx); err != nil {
		return err
	}
	return setOrderState(ctx, tx, orderID, to)
}

// orderID returns the order id of an event in canonical form; an event
// without a valid one can never be applied, so it is logged and skipped.
func (inv *Inventory) orderID(ctx context.Context, id, event string) (string, bool) {
	c, ok := uuids.Canonical(id)
	if !ok {
		inv.log.WarnContext(ctx, event+" with an invalid order id, ignored", "order_id", id)
	}
	return c, ok
}

// claimOrder locks the order's row and returns its state. When there is
// none it creates it in state initial and returns "".
func claimOrder(ctx context.Context, tx bun.Tx, orderID string, initial state) (state, error) {
	res, err := tx.NewRaw(`INSERT INTO orders (order_id, state) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING`,
		orderID, initial).Exec(ctx)
	if err != nil {
		return "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return "", err
	}
	return lockOrder(ctx, tx, orderID)
}

// lockOrder locks the order's row and returns its state, "" when unknown.
func lockOrder(ctx context.Context, tx bun.Tx, orderID string) (state, error) {
	var s state
	err := tx.NewRaw(`SELECT state FROM orders WHERE order_id = ? FOR UPDATE`, orderID).Scan(ctx, &s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return s, err
}

func setOrderState(ctx context.Context, tx bun.Tx, orderID string, s state) error {
	_, err := tx.NewRaw(`UPDATE orders SET state = ?, updated_at = now() WHERE order_id = ?`, s, orderID).Exec(ctx)
	return err
}

type line struct {
	productID string
	quantity  int
}

// mergeLines sums the quantities of lines naming the same product and
// returns one line per product, in product order.
func mergeLines(ls []*orderv1.Line) []line {
	sums := map[string]int{}
	for _, l := range ls {
		id, _ := uuids.Canonical(l.GetProductId())
		sums[id] = min(sums[id]+int(l.GetQuantity()), math.MaxInt32)
	}
	out := make([]line, 0, len(sums))
	for id, q := range sums {
		out = append(out, line{productID: id, quantity: q})
	}
	slices.SortFunc(out, func(a, b line) int { return cmp.Compare(a.productID, b.productID) })
	return out
}

func clamp32(n int) int32 { return int32(max(math.MinInt32, min(n, math.MaxInt32))) }
