// Package payment is the payment service: it charges an order once its
// stock is reserved, refunds it if the order is cancelled afterwards, and
// publishes payment.events.v1. It adds Order.payment to the graph.
package payment

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"fmt"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/payment/core"
	"github.com/onlinemart/mart/subgraphs/payment/graph"
)

// Topics is what the payment service consumes: OrderPlaced and
// OrderStatusChanged from order, StockReserved from inventory.
var Topics = []string{events.Topic("order"), events.Topic("inventory")}

// Spec is the payment service as the runtime runs it.
var Spec = service.Spec{
	Name:       "payment",
	Migrations: []string{"payment"},
	Build: func(ctx context.Context, d service.Deps) (*service.Parts, error) {
		// Create the topics we read with the project's partition count, in
		// case we start before their producers (a consumer would otherwise
		// auto-create them with the broker's default).
		if err := kafka.EnsureTopics(ctx, d.Kafka, service.Partitions, Topics...); err != nil {
			return nil, fmt.Errorf("payment: %w", err)
		}
		// The sandbox is the only provider so far.
		payments := core.NewPayments(d.DB, core.Options{Provider: core.NewSandbox(), Logger: d.Logger})
		consumer, err := inbox.New(d.DB, d.Cluster, "payment", Topics, inbox.Options{Logger: d.Logger})
		if err != nil {
			return nil, err
		}
		payments.Register(consumer)
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: payments}}),
			Access:  graph.Access,
			Workers: []service.Worker{consumer, payments},
		}, nil
	},
}
