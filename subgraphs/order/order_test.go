package order_test

import (
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as the runtime builds it: its schema has a rule for every
// mutation and subscription, and its workers consume the catalog and tail
// its own topic.
func TestSpecBuildsAWorkingService(t *testing.T) {
	svc := servicetest.Start(t, order.Spec)

	id := uuid.NewString()
	svc.Produce(t, kafkatest.Record(t, "product", id, &productv1.ProductCreated{Product: &productv1.Product{
		Id: id, Name: "Mug", Price: &productv1.Money{Amount: 1250, Currency: "EUR"}, Active: true, UpdatedAt: timestamppb.Now()}}))
	testrun.WaitFor(t, "the product in the catalog copy", func() bool {
		var n int
		_ = svc.DB.DB.QueryRow("SELECT count(*) FROM catalog_products WHERE product_id = ?", id).Scan(&n)
		return n == 1
	})
}
