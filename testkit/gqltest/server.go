// Package gqltest serves one subgraph's executable schema in a test as the
// runtime serves it, and talks GraphQL to it: a client with queries and
// subscriptions, access tokens for any principal, and a count of the
// database reads a request causes. It is light: unlike systemtest it
// starts no other service.
package gqltest

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlserver"
)

// The issuer and audience of test tokens.
const (
	Issuer   = "mart"
	Audience = "mart-api"
)

// Keys is a fresh signing key with an Issuer of access tokens over it, as
// the user service holds.
type Keys struct {
	Key    auth.Key
	Issuer *auth.Issuer
}

// NewKeys generates a key; its tokens live an hour.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer([]auth.Key{key}, Issuer, Audience, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &Keys{Key: key, Issuer: issuer}
}

// Verifier checks tokens against k, as every service checks them.
func (k *Keys) Verifier() *auth.Verifier {
	return auth.NewKeyVerifier([]auth.Key{k.Key}, Issuer, Audience)
}

// Token issues an access token for p.
func (k *Keys) Token(t testing.TB, p auth.Principal) string {
	t.Helper()
	tok, _, err := k.Issuer.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Server is a subgraph served over HTTP until the test ends.
type Server struct {
	URL  string // its /graphql endpoint
	Keys *Keys  // the keys its tokens are verified with
	t    testing.TB
}

// Serve serves schema with fresh keys; see Keys.Serve.
func Serve(t testing.TB, schema graphql.ExecutableSchema, access auth.Rules) *Server {
	t.Helper()
	return NewKeys(t).Serve(t, schema, access)
}

// Serve serves schema as the runtime does: bearer tokens verified against
// k by auth.Middleware, root fields guarded by access, errors presented by
// gqlserver. The server logs to the test's output and stops when the test
// ends.
func (k *Keys) Serve(t testing.TB, schema graphql.ExecutableSchema, access auth.Rules) *Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil)) // shown on failure
	srv := httptest.NewServer(auth.Middleware(k.Verifier(), log,
		gqlserver.New(schema, gqlserver.Options{Logger: log, Access: access})))
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Keys: k, t: t}
}

// Token issues an access token for p that the server accepts.
func (s *Server) Token(p auth.Principal) string {
	s.t.Helper()
	return s.Keys.Token(s.t, p)
}

// As returns a client acting for p; the zero principal is anonymous.
func (s *Server) As(p auth.Principal) Client {
	s.t.Helper()
	if p == (auth.Principal{}) {
		return Client{URL: s.URL}
	}
	return Client{URL: s.URL, Token: s.Token(p)}
}
