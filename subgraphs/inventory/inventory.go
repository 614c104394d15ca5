// Package inventory is the inventory service: how many units of each
// product the mart holds, the ledger that explains every change, and the
// order saga's reservations. It contributes Product.stock to the
// supergraph, consumes product.events.v1 and order.events.v1 and publishes
// inventory.events.v1.
package inventory

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
	"github.com/onlinemart/mart/subgraphs/inventory/graph"
)

// Spec is the inventory service as the runtime runs it.
var Spec = service.Spec{
	Name:       "inventory",
	Migrations: []string{"inventory"},
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		inv := core.NewInventory(d.DB, core.Options{Logger: d.Logger})
		consumer, err := inbox.New(d.DB, d.Cluster, "inventory", core.Topics, inbox.Options{Logger: d.Logger})
		if err != nil {
			return nil, err
		}
		inv.Consume(consumer)
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: inv}}),
			Access:  graph.Access,
			Workers: []service.Worker{consumer},
		}, nil
	},
}
