package payment_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/payment"
	"github.com/onlinemart/mart/subgraphs/payment/core"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as wired by Spec, over a real broker: saga events come in
// through the inbox (redeliveries included), payment events go out through
// the outbox relay, one per fact.
func TestSagaEventsThroughKafka(t *testing.T) {
	ctx := context.Background()
	svc := servicetest.Start(t, payment.Spec)
	db, cluster := svc.DB, svc.Cluster
	approvedBefore := testrun.Counter(t, "mart_payment_charges_total", map[string]string{"outcome": core.OutcomeApproved})

	status := func(order string) core.Status {
		var s core.Status
		_ = db.DB.NewRaw(`SELECT status FROM payments WHERE order_id = ?`, order).Scan(ctx, &s)
		return s
	}
	paid, unpaid, user := newID(), newID(), newID()
	total := &commonv1.Money{Amount: 2500, Currency: "USD"}

	// The paid order: placed, then its stock reserved, delivered three
	// times (twice as the same event, once re-sent as a new one).
	svc.Produce(t, kafkatest.Record(t, "order", paid, &orderv1.OrderPlaced{OrderId: paid, UserId: user, Total: total, PaymentToken: core.TokenVisa}))
	res := kafkatest.Record(t, "inventory", paid, &inventoryv1.StockReserved{OrderId: paid})
	svc.Produce(t, res, res, kafkatest.Record(t, "inventory", paid, &inventoryv1.StockReserved{OrderId: paid}))
	// The unpaid order is cancelled before its stock reservation arrives.
	svc.Produce(t, kafkatest.Record(t, "order", unpaid, &orderv1.OrderPlaced{OrderId: unpaid, UserId: user, Total: total, PaymentToken: core.TokenVisa}),
		kafkatest.Record(t, "order", unpaid, cancelled(unpaid, user)))
	testrun.WaitFor(t, "the unpaid order's cancellation", func() bool { return status(unpaid) == core.Cancelled })
	svc.Produce(t, kafkatest.Record(t, "inventory", unpaid, &inventoryv1.StockReserved{OrderId: unpaid}))

	topic := events.Topic("payment")
	testrun.WaitFor(t, "PaymentSucceeded", func() bool { return kafkatest.Count(t, cluster, topic) >= 1 })
	// Then the paid order is cancelled: the same three deliveries.
	cancel := kafkatest.Record(t, "order", paid, cancelled(paid, user))
	svc.Produce(t, cancel, cancel, kafkatest.Record(t, "order", paid, cancelled(paid, user)))
	testrun.WaitFor(t, "the refund", func() bool { return status(paid) == core.Refunded })
	testrun.WaitFor(t, "PaymentRefunded", func() bool { return kafkatest.Count(t, cluster, topic) >= 2 })
	// Distinct event ids: 5 about the paid order, 3 about the unpaid one.
	testrun.WaitFor(t, "every event to be handled", func() bool {
		var n int
		_ = db.DB.NewRaw(`SELECT count(*) FROM inbox WHERE consumer = 'payment'`).Scan(ctx, &n)
		return n == 8
	})

	var got []string
	for _, r := range kafkatest.ReadTopic(t, cluster, topic) {
		meta, msg, err := events.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if meta.Key != paid || meta.Source != events.Source("payment") {
			t.Errorf("%s: key %s source %s, want the paid order, mart/payment", meta.Type, meta.Key, meta.Source)
		}
		got = append(got, string(msg.ProtoReflect().Descriptor().Name()))
		if s, ok := msg.(*paymentv1.PaymentSucceeded); ok && s.GetAmount().GetAmount() != 2500 {
			t.Errorf("charged %v, want 2500 USD", s.GetAmount())
		}
	}
	if len(got) != 2 || got[0] != "PaymentSucceeded" || got[1] != "PaymentRefunded" {
		t.Errorf("published %v, want PaymentSucceeded then PaymentRefunded", got)
	}
	if n := testrun.Counter(t, "mart_payment_charges_total", map[string]string{"outcome": core.OutcomeApproved}) - approvedBefore; n != 1 {
		t.Errorf("%v approved charges, want 1", n)
	}
	if s := status(unpaid); s != core.Cancelled {
		t.Errorf("unpaid order's payment is %s, want CANCELLED", s)
	}
}

func cancelled(order, user string) *orderv1.OrderStatusChanged {
	return &orderv1.OrderStatusChanged{OrderId: order, UserId: user,
		OldStatus: orderv1.Status_STATUS_PENDING, NewStatus: orderv1.Status_STATUS_CANCELLED, Reason: "CUSTOMER_CANCELLED"}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
