package core_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/testkit/gqltest"
)

const password = "correct horse battery"

// env is one test's user database with accounts over it.
type env struct {
	t        *testing.T
	db       *pgtest.Database
	accounts *core.Accounts
	verifier *auth.Verifier
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t, "user")
	keys := gqltest.NewKeys(t)
	return &env{
		t: t, db: db,
		accounts: core.NewAccounts(db.DB, core.Options{Issuer: keys.Issuer, RefreshTokenTTL: time.Hour,
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}), // shown on failure
		verifier: keys.Verifier(),
	}
}

// register creates an account that must succeed.
func (e *env) register(email, name string) *core.Session {
	e.t.Helper()
	s, errs, err := e.accounts.Register(context.Background(), core.RegisterInput{Email: email, Password: password, Name: name})
	if err != nil || errs != nil {
		e.t.Fatalf("register %s: %v %+v", email, err, errs)
	}
	return s
}

func (e *env) login(email, pw string) (*core.Session, []usererror.UserError) {
	e.t.Helper()
	s, errs, err := e.accounts.Login(context.Background(), core.LoginInput{Email: email, Password: pw})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, errs
}

// refresh returns the new session, or nil and the error code.
func (e *env) refresh(token string) (*core.Session, usererror.Code) {
	e.t.Helper()
	s, errs, err := e.accounts.Refresh(context.Background(), token)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(errs) > 0 {
		if s != nil {
			e.t.Fatalf("refresh returned a session and errors %+v", errs)
		}
		return nil, errs[0].Code
	}
	return s, ""
}

// principal verifies a session's access token as every service would.
func (e *env) principal(s *core.Session) auth.Principal {
	e.t.Helper()
	p, err := e.verifier.Verify(context.Background(), s.AccessToken)
	if err != nil {
		e.t.Fatalf("access token does not verify: %v", err)
	}
	return p
}

// outbox lists the types of the events waiting in the outbox, in order.
func (e *env) outbox() []string {
	e.t.Helper()
	var types []string
	if err := e.db.DB.NewRaw("SELECT type FROM outbox ORDER BY seq").Scan(context.Background(), &types); err != nil {
		e.t.Fatal(err)
	}
	return types
}

func codes(errs []usererror.UserError) []usererror.Code {
	out := make([]usererror.Code, len(errs))
	for i, e := range errs {
		out[i] = e.Code
	}
	return out
}

func ptr[T any](v T) *T { return &v }
