// Package user is the user service: accounts, sign-in and the access
// tokens every other component trusts. It owns the User entity, publishes
// user.events.v1 and serves its token keys at /.well-known/jwks.json.
package user

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"fmt"
	"net/http"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/subgraphs/user/graph"
)

// Spec is the user service as the runtime runs it, with its settings.
func Spec(cfg Config) service.Spec {
	return service.Spec{
		Name:       "user",
		Migrations: []string{"user"},
		Publishes:  core.Publishes,
		Consumes:   core.Consumes,
		Build: func(ctx context.Context, d service.Deps) (*service.Parts, error) {
			keys, err := core.LoadKeys(ctx, d.DB, cfg.KeyFile)
			if err != nil {
				return nil, err
			}
			issuer, err := auth.NewIssuer(keys, d.Auth.Issuer, d.Auth.Audience, cfg.AccessTokenTTL)
			if err != nil {
				return nil, err
			}
			accounts := core.NewAccounts(d.DB, core.Options{Issuer: issuer, RefreshTokenTTL: cfg.RefreshTokenTTL, Logger: d.Logger})
			accounts.RegisterHandlers(d.Handlers)
			if cfg.AdminEmail != "" && cfg.AdminPassword != "" {
				if _, err := accounts.EnsureAdmin(ctx, cfg.AdminEmail, "", cfg.AdminPassword); err != nil {
					return nil, fmt.Errorf("first admin: %w", err)
				}
			}
			return &service.Parts{
				Schema: graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: accounts}}),
				Access: graph.Access,
				Routes: map[string]http.Handler{"GET /.well-known/jwks.json": jwks(keys)},
				// It holds the keys, so it verifies with them rather than over HTTP.
				Verifier: auth.NewKeyVerifier(keys, d.Auth.Issuer, d.Auth.Audience),
				Prune:    core.PruneRules(),
			}, nil
		},
	}
}

// jwks serves the public keys that verify access tokens. Verifiers may
// cache them for a while: a new key is only used after a restart, and they
// refetch when a token names a key they do not know.
func jwks(keys []auth.Key) http.Handler {
	body := auth.JWKS(keys)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	})
}
