// Package graph is the product subgraph's GraphQL layer: gqlgen's generated
// executor plus resolvers that translate to and from the core package.
package graph

import (
	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/subgraphs/product/core"
)

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct {
	Store   *core.Catalog
	Changes *live.Feed // product events, for subscriptions
}
