package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field. Fields that answer for the
// caller alone (me, _entities) are public and check each object instead.
var Access = auth.Rules{
	"Query.me":                auth.Public,
	"Query.users":             auth.Roles(auth.Admin),
	"Mutation.register":       auth.Public,
	"Mutation.login":          auth.Public,
	"Mutation.refreshToken":   auth.Public,
	"Mutation.logout":         auth.Public,
	"Mutation.updateProfile":  auth.SignedIn,
	"Mutation.changePassword": auth.SignedIn,
	"Mutation.setUserRole":    auth.Roles(auth.Admin),
}
