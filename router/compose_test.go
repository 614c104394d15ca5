package router

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSupergraphConfig(t *testing.T) {
	subgraphs, err := LoadSupergraphConfig("testdata/supergraph.yaml", map[string]string{"inventory": "http://inventory:4004/graphql"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Subgraph{
		{Name: "products", RoutingURL: "http://127.0.0.1:4002/graphql", SchemaFile: filepath.Join("testdata", "products.graphqls")},
		{Name: "inventory", RoutingURL: "http://inventory:4004/graphql", SchemaFile: filepath.Join("testdata", "inventory.graphqls")},
	}
	if len(subgraphs) != len(want) {
		t.Fatalf("got %+v", subgraphs)
	}
	for i := range want {
		if subgraphs[i] != want[i] {
			t.Errorf("subgraph %d: got %+v, want %+v", i, subgraphs[i], want[i])
		}
	}

	if _, err := LoadSupergraphConfig("testdata/supergraph.yaml", map[string]string{"invntory": "http://x"}); err == nil || !strings.Contains(err.Error(), "invntory") {
		t.Fatalf("override of an unknown subgraph: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "supergraph.yaml")
	_ = os.WriteFile(bad, []byte("subgraphs:\n  - name: a\n    routing_url: http://a\n  - name: a\n    schema: a.graphqls\n    routing_url: http://a\n    colour: red\n"), 0o600)
	if _, err := LoadSupergraphConfig(bad, nil); err == nil {
		t.Fatal("want an error for an unknown key")
	}
}

func TestRepositorySupergraphConfigLoads(t *testing.T) {
	subgraphs, err := LoadSupergraphConfig("../supergraph.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(subgraphs) == 0 || subgraphs[0].Name != "product" {
		t.Fatalf("got %+v", subgraphs)
	}
}

func TestComposeFixtureSubgraphs(t *testing.T) {
	subgraphs, err := LoadSupergraphConfig("testdata/supergraph.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sdl, err := Compose(context.Background(), subgraphs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type Query {", "products(first: Int = 10): [Product!]!", "type Subscription {", "type Product {\n  id: ID!\n  name: String!\n  price: Int!\n  stock: Int!\n}"} {
		if !strings.Contains(sdl, want) {
			t.Errorf("supergraph lacks %q:\n%s", want, sdl)
		}
	}
	// The API schema shows neither federation machinery nor the composer's own declarations.
	for _, unwanted := range []string{"@key", "_entities", "_Any", "@link", "openfed__", "@authenticated", "join__"} {
		if strings.Contains(sdl, unwanted) {
			t.Errorf("supergraph contains %q:\n%s", unwanted, sdl)
		}
	}
	again, err := Compose(context.Background(), subgraphs)
	if err != nil || again != sdl {
		t.Fatalf("composition is not deterministic (err %v)", err)
	}
}

func TestComposeIncompatibleFieldTypes(t *testing.T) {
	_, err := Compose(context.Background(), []Subgraph{
		{Name: "products", RoutingURL: "http://products/graphql", SchemaFile: "testdata/products.graphqls"},
		{Name: "pricing", RoutingURL: "http://pricing/graphql", SchemaFile: "testdata/pricing_incompatible.graphqls"},
	})
	var ce *CompositionError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("want one composition problem, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"Product.price", `"Int" is returned by the following subgraph: "products"`, `"String" is returned by the following subgraph: "pricing"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "at buildRouterConfiguration") || strings.Contains(msg, ".js") {
		t.Errorf("error shows the JS stack:\n%s", msg)
	}
}

func TestComposeMissingSchemaFile(t *testing.T) {
	_, err := Compose(context.Background(), []Subgraph{{Name: "ghost", RoutingURL: "http://ghost/graphql", SchemaFile: "testdata/ghost.graphqls"}})
	if err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Fatalf("got %v", err)
	}
}
