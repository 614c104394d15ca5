package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/subgraphs/product/graph"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// serve serves the product subgraph over catalog as the runtime does.
func serve(t *testing.T, catalog *core.Catalog) *gqltest.Server {
	t.Helper()
	return gqltest.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: catalog}}), graph.Access)
}

// The router asks for many Product entities in one _entities call; the
// subgraph answers it with one database query, in the order asked.
func TestEntitiesAreResolvedInOneQuery(t *testing.T) {
	db := pgtest.New(t, "product")
	catalog := core.NewCatalog(db.DB, core.Options{})
	ctx := context.Background()
	var reps []map[string]any
	var want []string
	for i := range 50 {
		p, errs, err := catalog.Create(ctx, core.CreateInput{SKU: fmt.Sprintf("ENT-%02d", i), Name: "Entity item",
			Price: core.Money{Amount: int64(i), Currency: "USD"}})
		if err != nil || errs != nil {
			t.Fatal(err, errs)
		}
		// Ask in reverse creation order to catch order mix-ups.
		reps = append([]map[string]any{{"__typename": "Product", "id": p.ID}}, reps...)
		want = append([]string{p.SKU}, want...)
	}
	reps = append(reps, map[string]any{"__typename": "Product", "id": "0193c1d4-0000-7000-8000-000000000001"})

	// Counted from here: a catalog on a counting copy of the database
	// serves the query.
	counted, reads := gqltest.CountSelects(db.DB, "products")
	srv := serve(t, core.NewCatalog(counted, core.Options{}))
	var out struct {
		Entities []*struct{ SKU string } `json:"_entities"`
	}
	r := srv.As(auth.Principal{}).Query(t, `query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sku } } }`,
		map[string]any{"r": reps}, &out)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("%d product queries for 50 entities, want 1", n)
	}
	if len(out.Entities) != 51 || out.Entities[50] != nil {
		t.Fatalf("want 50 products and a null for the unknown id, got %d", len(out.Entities))
	}
	for i, e := range out.Entities[:50] {
		if e == nil || e.SKU != want[i] {
			t.Fatalf("entity %d = %+v, want %s", i, e, want[i])
		}
	}
}
