package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/systemtest"
	"github.com/onlinemart/mart/subgraphs/product"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/subgraphs/product/graph"
)

// selectCounter counts SELECTs on the products table.
type selectCounter struct{ n atomic.Int64 }

func (c *selectCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (c *selectCounter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "SELECT") && strings.Contains(e.Query, `"products"`) {
		c.n.Add(1)
	}
}

// The router asks for many Product entities in one _entities call; the
// subgraph answers it with one database query, in the order asked.
func TestEntitiesAreResolvedInOneQuery(t *testing.T) {
	db := pgtest.New(t, "product")
	catalog := core.NewCatalog(db.DB)
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

	counter := &selectCounter{}
	db.DB.AddQueryHook(counter)
	srv := httptest.NewServer(gqlserver.New(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Catalog: catalog}}), gqlserver.Options{Access: product.Access}))
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{
		"query":     `query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sku } } }`,
		"variables": map[string]any{"r": reps},
	})
	var out struct {
		Entities []*struct{ SKU string } `json:"_entities"`
	}
	r := systemtest.Post(t, srv.URL, "application/json", body, &out)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if n := counter.n.Load(); n != 1 {
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
