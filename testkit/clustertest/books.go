package clustertest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/system"
)

// Books are the promises of the whole system checked across the services'
// databases and the payment topic once a run has drained: every order the
// clients were given exists and has settled, money and stock moved once
// and consistently with the order's fate, each customer was told once.
// Counts named for a violation must be 0.
type Books struct {
	Orders   int            // orders in the order database
	ByStatus map[string]int // of those, by status

	Missing int // accepted by placeOrder (an id returned) but not stored
	Stuck   int // not CONFIRMED, CANCELLED, SHIPPED or DELIVERED

	// Money: a confirmed order is paid, a cancelled one is not (or was
	// refunded), a refund is only for a cancelled order, and the payment
	// topic carries at most one PaymentSucceeded per order.
	Charges, Refunds  int
	PaymentViolations int
	DoubleCharges     int

	// Stock: counters equal the ledger and on_hand ≥ reserved ≥ 0 for
	// every product; a settled order holds nothing and took its lines'
	// units if it was confirmed, none if it was cancelled; no movement of
	// one kind repeated for an order and product.
	Products          int
	StockViolations   int
	LedgerViolations  int
	MovementRepeats   int
	OrderStockMisfits int

	// Notifications: exactly one per (order, template, channel) the order's
	// fate calls for (default preferences: email), all delivered.
	Notifications          int
	NotificationDupes      int
	NotificationsMissing   int
	NotificationsUndelived int
	Parked                 int // events still waiting for a read model

	OutboxLeft int            // events not yet relayed, all services
	DeadLetter map[string]int // records per dead-letter topic
	// DeadLetterWhy are the distinct causes written on dead letters.
	DeadLetterWhy []string

	// Examples are the first violations found, for the test log.
	Examples []string
}

// Violations returns every violation count by name.
func (b Books) Violations() map[string]int {
	dl := 0
	for _, n := range b.DeadLetter {
		dl += n
	}
	return map[string]int{
		"orders lost": b.Missing, "orders stuck": b.Stuck,
		"payment mismatches": b.PaymentViolations, "double charges": b.DoubleCharges,
		"stock rows broken": b.StockViolations, "ledger mismatches": b.LedgerViolations,
		"repeated movements": b.MovementRepeats, "orders with wrong stock": b.OrderStockMisfits,
		"duplicate notifications": b.NotificationDupes, "missing notifications": b.NotificationsMissing,
		"undelivered notifications": b.NotificationsUndelived, "parked events": b.Parked,
		"events left in outboxes": b.OutboxLeft, "dead letters": dl,
	}
}

// Settled reports whether the system has nothing left to do: no order
// in flight, no payment or stock still moving, every notification sent,
// every outbox empty. A drain waits for it before judging the books.
func (b Books) Settled() bool {
	return b.Stuck == 0 && b.OutboxLeft == 0 && b.PaymentViolations == 0 && b.OrderStockMisfits == 0 &&
		b.NotificationsMissing == 0 && b.NotificationsUndelived == 0 && b.Parked == 0
}

func (b *Books) example(format string, args ...any) {
	if len(b.Examples) < 20 {
		b.Examples = append(b.Examples, fmt.Sprintf(format, args...))
	}
}

// CheckBooks reads every service's database and the payment and
// dead-letter topics. accepted are the ids placeOrder returned.
func (c *Cluster) CheckBooks(ctx context.Context, accepted []string) (Books, error) {
	b := Books{ByStatus: map[string]int{}, DeadLetter: map[string]int{}}
	dbs := map[string]*sql.DB{}
	for _, s := range system.ServiceNames() {
		db, err := c.DB(s)
		if err != nil {
			return b, err
		}
		defer db.Close()
		dbs[s] = db
	}
	status, err := queryMap[string](ctx, dbs["order"], `SELECT id::text, status FROM orders`)
	if err != nil {
		return b, err
	}
	src := sources{dbs: dbs, accepted: accepted, status: status}
	for _, step := range []func(context.Context, sources) error{b.orders, b.money, b.stock, b.notifications, b.outboxes} {
		if err := step(ctx, src); err != nil {
			return b, err
		}
	}
	if err := c.paymentEvents(ctx, &b); err != nil {
		return b, err
	}
	return b, c.deadLetters(ctx, &b)
}

// settled are the statuses an order may rest in.
var settled = []string{"CONFIRMED", "CANCELLED", "SHIPPED", "DELIVERED"}

// sources are what the checks read: every service's database, the ids
// placeOrder returned, and the orders' statuses (read once, so every check
// judges the same moment).
type sources struct {
	dbs      map[string]*sql.DB
	accepted []string
	status   map[string]string // order id → status
}

func (b *Books) orders(_ context.Context, src sources) error {
	st := src.status
	b.Orders = len(st)
	for id, s := range st {
		b.ByStatus[s]++
		if !slices.Contains(settled, s) {
			b.Stuck++
			b.example("order %s stuck in %s", id, s)
		}
	}
	for _, id := range src.accepted {
		if _, ok := st[id]; !ok {
			b.Missing++
			b.example("order %s accepted but not stored", id)
		}
	}
	return nil
}

func (b *Books) money(ctx context.Context, src sources) error {
	orders := src.status
	pays, err := queryMap[string](ctx, src.dbs["payment"], `SELECT order_id::text, status FROM payments`)
	if err != nil {
		return err
	}
	for id, ps := range pays {
		os := orders[id]
		if ps == "SUCCEEDED" || ps == "REFUNDED" {
			b.Charges++
		}
		if ps == "REFUNDED" {
			b.Refunds++
		}
		var ok bool
		switch ps {
		case "SUCCEEDED":
			ok = os == "CONFIRMED" || os == "SHIPPED" || os == "DELIVERED"
		case "REFUNDED", "FAILED", "CANCELLED":
			ok = os == "CANCELLED"
		default: // PENDING, CHARGING: work left after the drain
			ok = false
		}
		if !ok {
			b.PaymentViolations++
			b.example("order %s is %s but its payment %s", id, os, ps)
		}
	}
	for id, os := range orders {
		if _, ok := pays[id]; !ok && os != "CANCELLED" {
			b.PaymentViolations++
			b.example("order %s is %s without a payment", id, os)
		}
	}
	return nil
}

func (b *Books) stock(ctx context.Context, src sources) error {
	inv, ord, status := src.dbs["inventory"], src.dbs["order"], src.status
	if err := inv.QueryRowContext(ctx, `SELECT count(*) FROM stock`).Scan(&b.Products); err != nil {
		return err
	}
	if err := inv.QueryRowContext(ctx, `SELECT count(*) FROM stock WHERE reserved < 0 OR on_hand < reserved`).Scan(&b.StockViolations); err != nil {
		return err
	}
	if err := inv.QueryRowContext(ctx, `SELECT count(*) FROM stock s
		WHERE s.on_hand <> (SELECT coalesce(sum(on_hand_delta), 0) FROM stock_movements m WHERE m.product_id = s.product_id)
		   OR s.reserved <> (SELECT coalesce(sum(reserved_delta), 0) FROM stock_movements m WHERE m.product_id = s.product_id)`).Scan(&b.LedgerViolations); err != nil {
		return err
	}
	if err := inv.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM stock_movements WHERE order_id IS NOT NULL
		GROUP BY order_id, product_id, kind HAVING count(*) > 1) d`).Scan(&b.MovementRepeats); err != nil {
		return err
	}
	// What each settled order should have moved, against what it did.
	want := map[string]int64{} // order → units taken from on_hand
	units, err := queryMap[int64](ctx, ord, `SELECT order_id::text, sum(quantity) FROM order_lines GROUP BY 1`)
	if err != nil {
		return err
	}
	for id, s := range status {
		if s != "CANCELLED" {
			want[id] = -units[id]
		} else {
			want[id] = 0
		}
	}
	taken, err := queryMap[int64](ctx, inv, `SELECT order_id::text, sum(on_hand_delta) FROM stock_movements WHERE order_id IS NOT NULL GROUP BY 1`)
	if err != nil {
		return err
	}
	held, err := queryMap[int64](ctx, inv, `SELECT order_id::text, sum(reserved_delta) FROM stock_movements WHERE order_id IS NOT NULL GROUP BY 1`)
	if err != nil {
		return err
	}
	for id, w := range want {
		if !slices.Contains(settled, status[id]) {
			continue // counted as stuck
		}
		if taken[id] != w || held[id] != 0 {
			b.OrderStockMisfits++
			b.example("order %s (%s): on_hand moved %d (want %d), still reserved %d", id, status[id], taken[id], w, held[id])
		}
	}
	for id := range taken {
		if _, ok := want[id]; !ok {
			b.OrderStockMisfits++
			b.example("stock moved for order %s the order service does not know", id)
		}
	}
	return nil
}

func (b *Books) notifications(ctx context.Context, src sources) error {
	n, ord, pay := src.dbs["notification"], src.dbs["order"], src.dbs["payment"]
	if err := n.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE order_id IS NOT NULL AND resend_of IS NULL`).Scan(&b.Notifications); err != nil {
		return err
	}
	if err := n.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM notifications WHERE order_id IS NOT NULL AND resend_of IS NULL
		GROUP BY order_id, template, channel HAVING count(*) > 1) d`).Scan(&b.NotificationDupes); err != nil {
		return err
	}
	if err := n.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE status <> 'SENT'`).Scan(&b.NotificationsUndelived); err != nil {
		return err
	}
	if err := n.QueryRowContext(ctx, `SELECT count(*) FROM parked_events`).Scan(&b.Parked); err != nil {
		return err
	}
	have, err := queryMap[int64](ctx, n, `SELECT order_id::text || ' ' || template, count(*) FROM notifications
		WHERE order_id IS NOT NULL AND resend_of IS NULL AND channel = 'EMAIL' GROUP BY 1`)
	if err != nil {
		return err
	}
	// What each order's history and payment call for.
	var wants []string
	for _, q := range []struct {
		db  *sql.DB
		sql string
	}{
		{ord, `SELECT DISTINCT order_id::text || ' ORDER_' || status FROM order_history WHERE status IN ('CONFIRMED', 'CANCELLED', 'SHIPPED', 'DELIVERED')`},
		{pay, `SELECT order_id::text || ' REFUND_ISSUED' FROM payments WHERE status = 'REFUNDED'`},
		{pay, `SELECT order_id::text || ' PAYMENT_FAILED' FROM payments WHERE status = 'FAILED'`},
	} {
		keys, err := queryStrings(ctx, q.db, q.sql)
		if err != nil {
			return err
		}
		wants = append(wants, keys...)
	}
	for _, k := range wants {
		if have[k] == 0 {
			b.NotificationsMissing++
			b.example("no email for %s", k)
		}
	}
	return nil
}

func (b *Books) outboxes(ctx context.Context, src sources) error {
	for s, db := range src.dbs {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			return fmt.Errorf("%s outbox: %w", s, err)
		}
		if n > 0 {
			b.example("%s: %d events left in the outbox", s, n)
		}
		b.OutboxLeft += n
	}
	return nil
}

// paymentEvents reads the payment topic: distinct PaymentSucceeded events
// (by event id) per order; more than one is a double charge.
func (c *Cluster) paymentEvents(ctx context.Context, b *Books) error {
	succeeded := map[string]map[string]bool{}
	err := c.ReadTopic(ctx, events.Topic("payment"), func(r *kgo.Record) error {
		meta, msg, err := events.Decode(r)
		if err != nil {
			return err
		}
		if m, ok := msg.(*paymentv1.PaymentSucceeded); ok {
			if succeeded[m.GetOrderId()] == nil {
				succeeded[m.GetOrderId()] = map[string]bool{}
			}
			succeeded[m.GetOrderId()][meta.ID] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for order, ids := range succeeded {
		if len(ids) > 1 {
			b.DoubleCharges++
			b.example("order %s: %d PaymentSucceeded events", order, len(ids))
		}
	}
	return nil
}

// deadLetters counts the records of every dead-letter topic and collects
// the causes written on them.
func (c *Cluster) deadLetters(ctx context.Context, b *Books) error {
	admin, err := c.Admin()
	if err != nil {
		return err
	}
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		return err
	}
	why := map[string]bool{}
	for _, t := range topics.Names() {
		if !strings.HasSuffix(t, ".dlq") {
			continue
		}
		err := c.ReadTopic(ctx, t, func(r *kgo.Record) error {
			b.DeadLetter[t]++
			for _, h := range r.Headers {
				if h.Key == inbox.HeaderDLQError {
					why[string(h.Value)] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for w := range why {
		b.DeadLetterWhy = append(b.DeadLetterWhy, w)
	}
	slices.Sort(b.DeadLetterWhy)
	return nil
}

// ReadTopic calls fn on every record of topic from the start to the end
// offsets at the time of the call.
func (c *Cluster) ReadTopic(ctx context.Context, topic string, fn func(*kgo.Record) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	admin, err := c.Admin()
	if err != nil {
		return err
	}
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	starts, err := admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			remaining[o.Partition] = o.Offset
		}
	})
	if len(remaining) == 0 {
		return nil
	}
	cl, err := c.KafkaCluster().NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("reading %s: %w (partitions left %v)", topic, ctx.Err(), remaining)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if err := fn(r); err != nil && ferr == nil {
				ferr = fmt.Errorf("%s/%d@%d: %w", topic, r.Partition, r.Offset, err)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// queryMap runs q, whose rows are (key, value), into a map.
func queryMap[V any](ctx context.Context, db *sql.DB, q string) (map[string]V, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err reports a failed read; Close only frees
	out := map[string]V{}
	for rows.Next() {
		var k string
		var v V
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// queryStrings runs q, whose rows are one string each, into a slice.
func queryStrings(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // as in queryMap
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
