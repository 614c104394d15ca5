// Package example is a tiny federation v2 subgraph for gqlserver's tests:
// the product schema's shape (Product @key(fields: "id"), a connection of
// products, one mutation, one subscription) with resolvers that return
// fixed data, so that the platform's tests need no service.
package example

//go:generate go tool gqlgen generate --config gqlgen.yml

import "github.com/onlinemart/mart/internal/auth"

// Access guards the example's root fields as a service's rules do: every
// mutation and subscription has one.
var Access = auth.Rules{
	"Mutation.createProduct":      auth.Roles(auth.Admin),
	"Subscription.productChanged": auth.Public,
}
