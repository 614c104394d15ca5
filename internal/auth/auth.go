// Package auth is identity and access for every component: the principal a
// request acts for, the access tokens the user service issues (EdDSA JWTs
// with their keys published as a JWK set), their verification by the router
// and each subgraph, and the rules that guard GraphQL root fields.
package auth

import (
	"context"
	"strings"
	"time"

	"github.com/onlinemart/mart/internal/gqlerr"
)

// Role is what a user may do.
type Role string

// Roles: a Customer acts on their own account and orders; an Admin also
// manages the catalogue, stock, shipping and users, and sees every order
// and payment.
const (
	Customer Role = "CUSTOMER"
	Admin    Role = "ADMIN"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Customer || r == Admin }

// Principal is who a request acts for.
type Principal struct {
	UserID    string
	Role      Role
	SessionID string // the refresh-token family the access token came from
	// TokenVersion is the user's token version when the token was issued
	// (claim "ver"): a password change, role change or an admin's
	// revocation raises it, and tokens below the new version end.
	TokenVersion int64
	// ExpiresAt is when the access token stops being accepted (its exp
	// plus Leeway); zero for a principal that did not come from a token.
	ExpiresAt time.Time
}

type principalKey struct{}

// WithPrincipal returns ctx acting for p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of ctx, if signed in.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Require returns the caller, or a client error: UNAUTHENTICATED when not
// signed in, FORBIDDEN when the caller's role is not among roles. With no
// roles any signed-in user passes.
func Require(ctx context.Context, roles ...Role) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, gqlerr.New(gqlerr.Unauthenticated, "sign in to do this")
	}
	if len(roles) == 0 {
		return p, nil
	}
	for _, r := range roles {
		if p.Role == r {
			return p, nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return p, gqlerr.New(gqlerr.Forbidden, "this needs the role "+strings.Join(names, " or "))
}

// Rule guards one GraphQL root field.
type Rule struct {
	public bool
	roles  []Role
}

// Rules that a service declares for its root fields.
var (
	Public   = Rule{public: true} // anyone, signed in or not
	SignedIn = Rule{}             // any valid token
)

// Roles allows only callers with one of roles.
func Roles(roles ...Role) Rule { return Rule{roles: roles} }

// Check returns nil when the caller of ctx may pass.
func (r Rule) Check(ctx context.Context) error {
	if r.public {
		return nil
	}
	_, err := Require(ctx, r.roles...)
	return err
}

// Rules maps "Type.field" of root fields (e.g. "Mutation.createProduct") to
// their rule.
type Rules map[string]Rule
