// Package product is the product service: the catalog of what the mart
// sells. It owns the Product entity and publishes product.events.v1.
package product

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/subgraphs/product/graph"
)

// Spec is the product service as the runtime runs it.
var Spec = service.Spec{
	Name:       "product",
	Migrations: []string{"product"},
	Publishes:  core.Publishes,
	Consumes:   core.Consumes,
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		catalog := core.NewCatalog(d.DB, core.Options{})
		catalog.RegisterHandlers(d.Handlers)
		return &service.Parts{
			Schema: graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: catalog, Changes: d.Feed()}}),
			Access: graph.Access,
		}, nil
	},
}
