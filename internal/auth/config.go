package auth

import "github.com/onlinemart/mart/internal/envvar"

// Config is what the token issuer and every verifier agree on.
type Config struct {
	Issuer   string
	Audience string
	// JWKSURL is where verifiers fetch the keys; empty: derived from
	// where the user service is.
	JWKSURL string
}

// Vars declares the token settings.
func (c *Config) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.String(&c.Issuer, "MART_JWT_ISSUER", "mart", "iss claim of access tokens"),
		envvar.String(&c.Audience, "MART_JWT_AUDIENCE", "mart-api", "aud claim of access tokens"),
		envvar.String(&c.JWKSURL, "MART_JWKS_URL", "", "where the router and subgraphs fetch the token keys; empty: the user service's /.well-known/jwks.json"),
	}
}
