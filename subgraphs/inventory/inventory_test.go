package inventory_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/inventory"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as the runtime builds it consumes product and order events
// over Kafka and answers through its outbox: a product gets a stock row, an
// order delivered twice is reserved and answered once, its confirmation
// commits it, and an order cancelled before it was placed is never
// reserved.
func TestServiceRunsTheSagaOverKafka(t *testing.T) {
	ctx := context.Background()
	svc := servicetest.Start(t, inventory.Spec)
	db, log := svc.DB, svc.Logger
	stock := func(id string) (onHand, reserved int) {
		t.Helper()
		if err := db.DB.QueryRow(`SELECT on_hand, reserved FROM stock WHERE product_id = ?`, id).Scan(&onHand, &reserved); err != nil {
			return -1, -1
		}
		return onHand, reserved
	}

	product := uuid.NewString()
	svc.Produce(t, kafkatest.Record(t, "product", product, &productv1.ProductCreated{Product: &productv1.Product{Id: product}}))
	testrun.WaitFor(t, "the stock row", func() bool { h, _ := stock(product); return h == 0 })
	if _, errs, err := core.NewInventory(db.DB, core.Options{Logger: log}).Adjust(ctx, core.AdjustInput{ProductID: product, Delta: 10, Reason: "delivery", IdempotencyKey: "d-1"}); err != nil || errs != nil {
		t.Fatal(err, errs)
	}

	order, early := uuid.NewString(), uuid.NewString()
	lines := []*orderv1.Line{{ProductId: product, Quantity: 3}}
	place := kafkatest.Record(t, "order", order, &orderv1.OrderPlaced{OrderId: order, Lines: lines})
	svc.Produce(t, place, place) // the same event twice, as after a relay crash
	svc.Produce(t, kafkatest.Record(t, "order", order, &orderv1.OrderStatusChanged{OrderId: order,
		OldStatus: orderv1.Status_STATUS_AWAITING_PAYMENT, NewStatus: orderv1.Status_STATUS_CONFIRMED}))
	svc.Produce(t, kafkatest.Record(t, "order", early, &orderv1.OrderStatusChanged{OrderId: early,
		OldStatus: orderv1.Status_STATUS_PENDING, NewStatus: orderv1.Status_STATUS_CANCELLED, Reason: "CUSTOMER_CANCELLED"}))
	svc.Produce(t, kafkatest.Record(t, "order", early, &orderv1.OrderPlaced{OrderId: early, Lines: lines}))

	testrun.WaitFor(t, "both orders to be handled", func() bool {
		var n int
		_ = db.DB.QueryRow(`SELECT count(*) FROM orders WHERE state IN ('COMMITTED', 'CANCELLED')`).Scan(&n)
		return n == 2
	})
	testrun.WaitFor(t, "the outbox to drain", func() bool {
		var n int
		_ = db.DB.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n)
		return n == 0
	})
	if h, r := stock(product); h != 7 || r != 0 {
		t.Errorf("stock on hand %d, reserved %d; want 7, 0", h, r)
	}
	recs := kafkatest.ReadTopic(t, svc.Cluster, events.Topic("inventory"))
	if len(recs) != 1 {
		t.Fatalf("%d inventory events, want 1 StockReserved", len(recs))
	}
	meta, msg, err := events.Decode(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := msg.(*inventoryv1.StockReserved); !ok || meta.Key != order || r.GetOrderId() != order ||
		len(r.GetItems()) != 1 || r.GetItems()[0].GetQuantity() != 3 {
		t.Errorf("published %s keyed %s: %v", meta.Type, meta.Key, msg)
	}
}
