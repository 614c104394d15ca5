package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field. Order.payment (through
// _entities) is public and checks each payment instead: its owner and
// admins see it, anyone else gets null.
var Access = auth.Rules{
	"Query.payments": auth.Roles(auth.Admin),
}
