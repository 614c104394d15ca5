// Package inventory is the inventory service: how many units of each
// product the mart holds, the ledger that explains every change, and the
// order saga's reservations. It contributes Product.stock to the
// supergraph, consumes product.events.v1 and order.events.v1 and publishes
// inventory.events.v1.
package inventory

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
	"github.com/onlinemart/mart/subgraphs/inventory/graph"
)

// Spec is the inventory service as the runtime runs it.
var Spec = service.Spec{
	Name:       "inventory",
	Migrations: []string{"inventory"},
	Publishes:  core.Publishes,
	Consumes:   core.Consumes,
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		inv := core.NewInventory(d.DB, core.Options{Logger: d.Logger})
		inv.RegisterHandlers(d.Handlers)
		return &service.Parts{
			Schema: graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: inv}}),
			Access: graph.Access,
		}, nil
	},
}
