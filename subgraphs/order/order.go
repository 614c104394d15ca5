// Package order is the order service: customers' orders and the saga that
// takes each from PENDING to CONFIRMED or CANCELLED. It owns the Order
// entity, adds User.orders, publishes order.events.v1 and consumes the
// product, inventory and payment events.
package order

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/order/core"
	"github.com/onlinemart/mart/subgraphs/order/graph"
)

// Spec is the order service as the runtime runs it.
var Spec = service.Spec{
	Name:       "order",
	Migrations: []string{"order"},
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		orders := core.NewOrders(d.DB, core.Options{Logger: d.Logger})
		consumer, err := inbox.New(d.DB, d.Cluster, core.Group, core.Topics, inbox.Options{Logger: d.Logger})
		if err != nil {
			return nil, err
		}
		orders.Register(consumer)
		changes := live.NewFeed(d.Cluster, events.Topic("order"), d.Logger)
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: orders, Changes: changes}}),
			Access:  graph.Access,
			Workers: []service.Worker{consumer, changes},
		}, nil
	},
}
