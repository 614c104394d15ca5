// Package product is the product service: the catalog of what the mart
// sells. It owns the Product entity and publishes product.events.v1.
package product

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/subgraphs/product/graph"
)

// Spec is the product service as the runtime runs it.
var Spec = service.Spec{
	Name:       "product",
	Migrations: []string{"product"},
	Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
		changes := live.NewFeed(d.Cluster, events.Topic("product"), d.Logger)
		resolver := &graph.Resolver{Store: core.NewCatalog(d.DB, core.Options{}), Changes: changes}
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: resolver}),
			Access:  graph.Access,
			Workers: []service.Worker{changes},
		}, nil
	},
}
