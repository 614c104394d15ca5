package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/config"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

func TestHelpListsEveryCommandAndVariable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mart serve", "mart migrate", "mart compose", "mart version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, v := range config.Vars() {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("help lacks %s", v.Name)
		}
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sell"}, &out, &out); err == nil {
		t.Fatal("want an error")
	}
}

func TestComposeWritesTheCommittedSupergraph(t *testing.T) {
	out := filepath.Join(t.TempDir(), "supergraph.graphql")
	var log bytes.Buffer
	if err := run(context.Background(), []string{"compose", "--config", "../../supergraph.yaml", "--out", out}, &log, &log); err != nil {
		t.Fatalf("compose: %v\n%s", err, log.String())
	}
	got, _ := os.ReadFile(out)
	committed, _ := os.ReadFile("../../schema/supergraph.graphql")
	if !bytes.Equal(got, committed) {
		t.Error("schema/supergraph.graphql is stale: run make generate")
	}
	if !strings.Contains(string(got), "products(") {
		t.Errorf("supergraph lacks products:\n%s", got)
	}
}

func TestComposeFailsWithReadableErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	head := `extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])` + "\n"
	write("a.graphqls", head+`type Product @key(fields: "id") { id: ID! price: Int! } type Query { a: Product }`)
	write("b.graphqls", head+`type Product @key(fields: "id") { id: ID! price: String! } type Query { b: Product }`)
	write("supergraph.yaml", "subgraphs:\n  - name: a\n    routing_url: http://a/graphql\n    schema: a.graphqls\n  - name: b\n    routing_url: http://b/graphql\n    schema: b.graphqls\n")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"compose", "--config", filepath.Join(dir, "supergraph.yaml"), "--out", filepath.Join(dir, "out.graphql")}, &stdout, &stderr)
	if err == nil {
		t.Fatal("want composition to fail")
	}
	if !strings.Contains(stderr.String(), "Product.price") {
		t.Errorf("error does not name the field:\n%s", stderr.String())
	}
	if _, statErr := os.Stat(filepath.Join(dir, "out.graphql")); statErr == nil {
		t.Error("a failed composition wrote a supergraph")
	}
}

func TestMigrateCreatesAndMigratesTheDatabase(t *testing.T) {
	name := pgtest.NewName()
	t.Setenv("DATABASE_URL", pgtest.ServerURL())
	t.Setenv("MART_PRODUCT_DATABASE", name)
	t.Cleanup(func() { pgtest.Drop(t, name) })
	var out bytes.Buffer
	for range 2 { // idempotent
		if err := run(context.Background(), []string{"migrate", "product"}, &out, &out); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out.String())
		}
	}
	dsn, _ := postgres.WithDatabase(pgtest.ServerURL(), name)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM products`).Scan(&n); err != nil {
		t.Fatalf("products table missing after migrate: %v", err)
	}
	if err := run(context.Background(), []string{"migrate", "warehouse"}, &out, &out); err == nil || !strings.Contains(err.Error(), "warehouse") {
		t.Errorf("unknown service: %v", err)
	}
}
