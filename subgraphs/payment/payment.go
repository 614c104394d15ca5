// Package payment is the payment service: it charges an order once its
// stock is reserved, refunds it if the order is cancelled afterwards, and
// publishes payment.events.v1. It adds Order.payment to the graph.
package payment

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/payment/core"
	"github.com/onlinemart/mart/subgraphs/payment/graph"
)

// Spec is the payment service as the runtime runs it.
var Spec = service.Spec{
	Name:       "payment",
	Migrations: []string{"payment"},
	Publishes:  core.Publishes,
	Consumes:   core.Consumes,
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		// The sandbox is the only provider so far.
		payments := core.NewPayments(d.DB, core.Options{Provider: core.NewSandbox(), Logger: d.Logger})
		payments.RegisterHandlers(d.Handlers)
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: payments}}),
			Access:  graph.Access,
			Workers: []service.Worker{payments},
		}, nil
	},
}
