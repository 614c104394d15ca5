package core_test

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The order consumer, over a real broker: the catalog copy fills from
// product.events.v1, and inventory and payment events move an order, with
// an exact redelivery (same event id) applied once.
func TestConsumerFollowsTheOtherServicesEvents(t *testing.T) {
	e := newEnv(t)
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics, err := events.Topics(core.Consumes)
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(ctx, cl, 3, topics...); err != nil {
		t.Fatal(err)
	}
	var h inbox.Handlers
	e.orders.RegisterHandlers(&h)
	c, err := inbox.New(e.db.DB, cluster, "order", topics, &h, inbox.Options{
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), InitialBackoff: 10 * time.Millisecond,
		ClientOpts: []kgo.Opt{kgo.FetchMaxWait(250 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Background(t, c.Run)

	id := uuid.Must(uuid.NewV7()).String()
	now := time.Now().UTC().Truncate(time.Microsecond)
	kafkatest.Produce(t, cl, kafkatest.Record(t, "product", id, &productv1.ProductCreated{Product: &productv1.Product{Id: id, Name: "Mug",
		Price: &productv1.Money{Amount: 1250, Currency: "EUR"}, Active: true, CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now)}}))
	testrun.WaitFor(t, "the product in the catalog copy", func() bool {
		return e.db.Count(e.t, "SELECT count(*) FROM catalog_products WHERE product_id = ?", id) == 1
	})

	o := e.place(alice, input(line(id, 2)))
	reserved := kafkatest.Record(t, "inventory", o.ID, &inventoryv1.StockReserved{OrderId: o.ID,
		Items: []*inventoryv1.Item{{ProductId: id, Quantity: 2}}, ReservedAt: timestamppb.Now()})
	kafkatest.Produce(t, cl, reserved, reserved) // the same event twice: a redelivery
	kafkatest.Produce(t, cl, kafkatest.Record(t, "payment", o.ID, &paymentv1.PaymentSucceeded{OrderId: o.ID, PaymentId: uuid.NewString(), SucceededAt: timestamppb.Now()}))
	testrun.WaitFor(t, "the order confirmed", func() bool { return e.get(o.ID).Status == core.Confirmed })

	if got := statuses(e.get(o.ID)); !reflect.DeepEqual(got, []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"}) {
		t.Errorf("history %v", got)
	}
	if got := e.changes(); !reflect.DeepEqual(got, []string{"PENDING>AWAITING_PAYMENT:", "AWAITING_PAYMENT>CONFIRMED:"}) {
		t.Errorf("events %v", got)
	}
	if dup := testrun.Counter(t, "mart_inbox_handled_total", map[string]string{"consumer": "order",
		"type": "mart.inventory.v1.StockReserved", "outcome": inbox.OutcomeDuplicate}); dup < 1 {
		t.Error("the redelivery was not recognised as one")
	}
}
