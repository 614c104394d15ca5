// Package graph is the inventory subgraph's GraphQL layer: gqlgen's
// generated executor plus resolvers that translate to and from the core
// package.
package graph

import "github.com/onlinemart/mart/subgraphs/inventory/core"

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct {
	Store *core.Inventory
}
