// Package order is the order service: customers' orders and the saga that
// takes each from PENDING to CONFIRMED or CANCELLED. It owns the Order
// entity, adds User.orders, publishes order.events.v1 and consumes the
// product, inventory and payment events.
package order

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/order/core"
	"github.com/onlinemart/mart/subgraphs/order/graph"
)

// Spec is the order service as the runtime runs it.
var Spec = service.Spec{
	Name:       "order",
	Migrations: []string{"order"},
	Publishes:  core.Publishes,
	Consumes:   core.Consumes,
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		orders := core.NewOrders(d.DB, core.Options{Logger: d.Logger})
		orders.RegisterHandlers(d.Handlers)
		return &service.Parts{
			Schema: graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: orders, Changes: d.Feed()}}),
			Access: graph.Access,
		}, nil
	},
}
