package order_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/internal/testrun"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order"
)

// The service as the runtime builds it: its schema has a rule for every
// mutation and subscription, and its workers consume the catalog and tail
// its own topic.
func TestSpecBuildsAWorkingService(t *testing.T) {
	db := pgtest.New(t, order.Spec.Migrations...)
	brokers := kafkatest.Start(t)
	cl := kafkatest.Client(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, service.Partitions, "product.events.v1", "inventory.events.v1", "payment.events.v1", "order.events.v1"); err != nil {
		t.Fatal(err)
	}
	parts, err := order.Spec.Build(ctx, service.Deps{DB: db.DB, Kafka: cl, Brokers: brokers, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	gqlserver.New(parts.Schema, gqlserver.Options{Access: parts.Access}) // panics on a missing rule
	for _, w := range parts.Workers {
		testrun.Background(t, w.Run)
	}

	id := uuid.NewString()
	r, err := events.NewRecord(events.Meta{ID: events.NewID(), Source: events.Source("product"), Time: time.Now(),
		Topic: events.Topic("product"), Key: id}, &productv1.ProductCreated{Product: &productv1.Product{
		Id: id, Name: "Mug", Price: &productv1.Money{Amount: 1250, Currency: "EUR"}, Active: true, UpdatedAt: timestamppb.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testrun.WaitFor(t, "the product in the catalog copy", func() bool {
		var n int
		_ = db.DB.QueryRow("SELECT count(*) FROM catalog_products WHERE product_id = ?", id).Scan(&n)
		return n == 1
	})
}
