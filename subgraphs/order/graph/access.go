package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field. order is public and answers
// null for an order that is not the caller's; _entities checks each order.
var Access = auth.Rules{
	"Query.orders":                    auth.Roles(auth.Admin),
	"Mutation.placeOrder":             auth.SignedIn,
	"Mutation.cancelOrder":            auth.SignedIn,
	"Mutation.markShipped":            auth.Roles(auth.Admin),
	"Mutation.markDelivered":          auth.Roles(auth.Admin),
	"Subscription.orderStatusChanged": auth.SignedIn,
}
