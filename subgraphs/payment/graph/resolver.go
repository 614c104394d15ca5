// Package graph is the payment subgraph's GraphQL layer: gqlgen's generated
// executor plus resolvers that translate to and from the core package and
// decide who may see which payment.
package graph

import "github.com/onlinemart/mart/subgraphs/payment/core"

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct {
	Store *core.Payments
}
