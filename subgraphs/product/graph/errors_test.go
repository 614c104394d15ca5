package graph_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// When the database fails, clients learn that something went wrong inside,
// never what: no SQL, driver text or addresses.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	db := pgtest.New(t, "product")
	srv := serve(t, core.NewCatalog(db.DB, core.Options{}))
	db.DB.Close()

	for _, q := range []string{
		`{"query":"{ products { edges { cursor } } }"}`,
		`{"query":"{ product(id: \"0193c1d4-0000-7000-8000-000000000001\") { id } }"}`,
	} {
		r := gqltest.Post(t, srv.URL, "application/json", []byte(q), nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Internal || r.Errors[0].Message != "internal error" {
			t.Fatalf("%s: %+v", q, r.Errors)
		}
		for _, leak := range []string{"sql", "database", "closed", "SELECT", "INSERT"} {
			if strings.Contains(r.Errors[0].Message, leak) {
				t.Errorf("error message leaks %q", leak)
			}
		}
	}
}

// Errors a client can fix carry BAD_USER_INPUT and say what is wrong.
func TestClientErrorsSayWhatIsWrong(t *testing.T) {
	db := pgtest.New(t, "product")
	srv := serve(t, core.NewCatalog(db.DB, core.Options{}))
	for q, want := range map[string]string{
		`{"query":"{ products(first: -1) { edges { cursor } } }"}`:                                         "first must be between 0 and 100",
		`{"query":"{ products(filter: {minPrice: -5}) { edges { cursor } } }"}`:                            "minPrice must be 0 or more",
		`{"query":"{ products(after: \"nope\") { edges { cursor } } }"}`:                                   "after is not a valid cursor",
		`{"query":"query($f: Int) { products(first: $f) { edges { cursor } } }", "variables": {"f": "x"}}`: "Int",
	} {
		r := gqltest.Post(t, srv.URL, "application/json", []byte(q), nil)
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, want) {
			t.Errorf("%s: %+v, want a message with %q", q, r.Errors, want)
			continue
		}
		if code := r.Errors[0].Code(); code != gqlerr.BadUserInput && code != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: code %q", q, code)
		}
	}
}

// While the database is down (a restart, a failover) clients are told to
// retry, not that something broke; once it is back the same request
// works, on the same pool.
func TestDatabaseOutageIsServiceUnavailable(t *testing.T) {
	server := pgtest.StartServer(t, pgtest.ServerOptions{})
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Options{ServerURL: server.URL(), Database: "product", Migrations: []string{"product"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := serve(t, core.NewCatalog(db, core.Options{}))
	q := []byte(`{"query":"{ products { edges { cursor } } }"}`)
	if r := gqltest.Post(t, srv.URL, "application/json", q, nil); len(r.Errors) != 0 {
		t.Fatalf("before the outage: %+v", r.Errors)
	}

	if err := server.Stop(ctx, pgtest.Fast); err != nil {
		t.Fatal(err)
	}
	// The first request meets a pooled connection the shutdown
	// terminated, the second a refused connection.
	for i := range 2 {
		r := gqltest.Post(t, srv.URL, "application/json", q, nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Unavailable {
			t.Fatalf("request %d during the outage: %+v, want one %s", i+1, r.Errors, gqlerr.Unavailable)
		}
		for _, leak := range []string{"127.0.0.1", "connect", "sql", "postgres"} {
			if strings.Contains(r.Errors[0].Message, leak) {
				t.Errorf("error message %q leaks %q", r.Errors[0].Message, leak)
			}
		}
	}

	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r := gqltest.Post(t, srv.URL, "application/json", q, nil); len(r.Errors) != 0 {
		t.Fatalf("after the outage: %+v", r.Errors)
	}
}
