package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field. Stock levels are public through
// Product.stock (an entity field, not a root field); the ledger and manual
// changes are for admins.
var Access = auth.Rules{
	"Query.stockMovements": auth.Roles(auth.Admin),
	"Mutation.adjustStock": auth.Roles(auth.Admin),
}
