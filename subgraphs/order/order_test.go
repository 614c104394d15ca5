package order_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order"
	"github.com/onlinemart/mart/subgraphs/order/core"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as the runtime builds it, over a real broker: the catalog
// copy fills from product.events.v1, inventory and payment events move an
// order, an exact redelivery (same event id) is applied once, and the
// order's status changes go out on order.events.v1.
func TestSpecFollowsTheOtherServicesEvents(t *testing.T) {
	ctx := context.Background()
	svc := servicetest.Start(t, order.Spec)

	id := uuid.NewString()
	svc.Produce(t, kafkatest.Record(t, "product", id, &productv1.ProductCreated{Product: &productv1.Product{
		Id: id, Name: "Mug", Price: &productv1.Money{Amount: 1250, Currency: "EUR"}, Active: true, UpdatedAt: timestamppb.Now()}}))
	testrun.WaitFor(t, "the product in the catalog copy", func() bool {
		return svc.DB.Count(t, "SELECT count(*) FROM catalog_products WHERE product_id = ?", id) == 1
	})

	orders := core.NewOrders(svc.DB.DB, core.Options{Logger: svc.Logger})
	customer := auth.Principal{UserID: uuid.NewString(), Role: auth.Customer}
	o, errs, err := orders.Place(ctx, customer.UserID, core.PlaceInput{
		Lines:           []core.LineInput{{ProductID: id, Quantity: 2}},
		ShippingAddress: core.Address{Name: "Alice Doe", Line1: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "de"},
		PaymentToken:    "tok_visa",
	})
	if err != nil || errs != nil {
		t.Fatalf("place: %v %+v", err, errs)
	}
	reserved := kafkatest.Record(t, "inventory", o.ID, &inventoryv1.StockReserved{OrderId: o.ID,
		Items: []*inventoryv1.Item{{ProductId: id, Quantity: 2}}, ReservedAt: timestamppb.Now()})
	svc.Produce(t, reserved, reserved) // the same event twice: a redelivery
	svc.Produce(t, kafkatest.Record(t, "payment", o.ID, &paymentv1.PaymentSucceeded{OrderId: o.ID, PaymentId: uuid.NewString(), SucceededAt: timestamppb.Now()}))
	testrun.WaitFor(t, "the order confirmed", func() bool {
		got, err := orders.Get(ctx, customer, o.ID)
		return err == nil && got.Status == core.Confirmed
	})
	if dup := testrun.Counter(t, "mart_inbox_handled_total", map[string]string{"consumer": "order",
		"type": "mart.inventory.v1.StockReserved", "outcome": inbox.OutcomeDuplicate}); dup < 1 {
		t.Error("the redelivery was not recognised as one")
	}

	testrun.WaitFor(t, "the outbox to drain", func() bool { return svc.DB.Count(t, "SELECT count(*) FROM outbox") == 0 })
	var changes []string
	for _, r := range kafkatest.ReadTopic(t, svc.Cluster, events.Topic("order")) {
		_, msg, err := events.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := msg.(*orderv1.OrderStatusChanged); ok && c.GetOrderId() == o.ID {
			changes = append(changes, fmt.Sprintf("%s>%s", core.StatusFromProto(c.OldStatus), core.StatusFromProto(c.NewStatus)))
		}
	}
	if want := []string{"PENDING>AWAITING_PAYMENT", "AWAITING_PAYMENT>CONFIRMED"}; !reflect.DeepEqual(changes, want) {
		t.Errorf("published status changes %v, want %v", changes, want)
	}
}
