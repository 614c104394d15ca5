package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field: anyone may browse the catalog;
// only admins change it.
var Access = auth.Rules{
	"Mutation.createProduct":      auth.Roles(auth.Admin),
	"Mutation.updateProduct":      auth.Roles(auth.Admin),
	"Mutation.archiveProduct":     auth.Roles(auth.Admin),
	"Subscription.productChanged": auth.Public,
}
