package user

import (
	"time"

	"github.com/onlinemart/mart/internal/envvar"
)

// Config holds the user service's own settings; the token claims it
// shares with every verifier are the runtime's (auth.Config).
type Config struct {
	KeyFile         string // PEM file of Ed25519 keys; empty: generated once and kept in the database
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	AdminEmail      string // ensure this ADMIN exists at start, with AdminPassword
	AdminPassword   string
}

// Vars declares the user service's settings.
func (c *Config) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.String(&c.KeyFile, "MART_JWT_KEY_FILE", "", "user service: PEM file of Ed25519 private keys, first one signs; empty: keys generated once and kept in the user database"),
		envvar.Duration(&c.AccessTokenTTL, "MART_ACCESS_TOKEN_TTL", "15m", "user service: lifetime of access tokens"),
		envvar.Duration(&c.RefreshTokenTTL, "MART_REFRESH_TOKEN_TTL", "720h", "user service: lifetime of refresh tokens"),
		envvar.String(&c.AdminEmail, "MART_ADMIN_EMAIL", "", "user service: ensure an ADMIN with this email exists at start (with MART_ADMIN_PASSWORD)"),
		envvar.String(&c.AdminPassword, "MART_ADMIN_PASSWORD", "", "user service: password of that first admin"),
	}
}
