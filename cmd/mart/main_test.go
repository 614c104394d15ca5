package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/systemtest"
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
	for _, v := range system.Vars() {
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

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The newcomer's path: `mart serve` with no Kafka configured starts the
// embedded broker, the product subgraph and the router, prints where the
// router is, serves a product round trip, and stops cleanly on a signal.
func TestServeRunsTheWholeSystem(t *testing.T) {
	prefix := pgtest.NewName()
	t.Setenv("DATABASE_URL", pgtest.ServerURL())
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("MART_KAFKA_EMBEDDED_ADDR", "127.0.0.1:0")
	t.Setenv("MART_ROUTER_ADDR", "127.0.0.1:0")
	t.Setenv("MART_SUPERGRAPH_CONFIG", "../../supergraph.yaml")
	t.Setenv("MART_LOG_LEVEL", "warn")
	t.Setenv("MART_ADMIN_EMAIL", systemtest.AdminEmail)
	t.Setenv("MART_ADMIN_PASSWORD", systemtest.AdminPassword)
	t.Setenv("MART_PPROF_ADDR", "127.0.0.1:0")
	// Inbox entries expire at once, and the pruner runs often.
	t.Setenv("MART_INBOX_RETENTION", "1ms")
	t.Setenv("MART_PRUNE_INTERVAL", "100ms")
	for _, name := range system.ServiceNames() {
		up := strings.ToUpper(name)
		t.Setenv("MART_"+up+"_ADDR", "127.0.0.1:0")
		t.Setenv("MART_"+up+"_DATABASE", prefix+"_"+name)
		t.Cleanup(func() { pgtest.Drop(t, prefix+"_"+name) })
	}
	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, &stdout, &stderr) }()

	banner := regexp.MustCompile(`GraphQL:\s+(http://\S+/graphql)`)
	var url string
	for deadline := time.Now().Add(time.Minute); url == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := banner.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		stop()
		t.Fatalf("no router address printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	// The profiler asked for with MART_PPROF_ADDR answers.
	profiler := regexp.MustCompile(`Profiler: (http://\S+/debug/pprof/)`).FindStringSubmatch(stdout.String())
	if profiler == nil {
		t.Errorf("no profiler address printed; stdout:\n%s", stdout.String())
	} else if resp, err := http.Get(profiler[1] + "goroutine?debug=1"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("profiler: %v %v", resp, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "goroutine profile") {
			t.Errorf("profiler answered %.200s", body)
		}
	}
	sys := &systemtest.System{RouterURL: url}
	admin := sys.Admin(t) // the admin from MART_ADMIN_EMAIL, signed in through the router
	for i := range 3 {
		var out struct {
			CreateProduct struct{ Product *struct{ ID string } }
		}
		admin.MustQuery(t, `mutation($sku: String!) { createProduct(input: {sku: $sku, name: "First steps", price: {amount: 100, currency: "USD"}}) { product { id } } }`,
			map[string]any{"sku": fmt.Sprintf("NEW-%d", i)}, &out)
		if out.CreateProduct.Product == nil {
			t.Fatalf("create: %+v", out)
		}
	}
	var page struct {
		Products struct {
			Edges    []struct{ Node struct{ SKU string } }
			PageInfo struct{ HasNextPage bool }
		}
	}
	r := systemtest.Post(t, url, "application/json", []byte(`{"query":"{ products(first: 2) { edges { node { sku } } pageInfo { hasNextPage } } }"}`), &page)
	if len(r.Errors) > 0 || len(page.Products.Edges) != 2 || !page.Products.PageInfo.HasNextPage {
		t.Fatalf("list: %+v %+v", r.Errors, page)
	}

	// The order service learned the products from their events and then
	// forgot having handled them: its pruner runs.
	dsn, _ := postgres.WithDatabase(pgtest.ServerURL(), prefix+"_order")
	orderDB, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer orderDB.Close()
	var known, remembered int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_ = orderDB.QueryRow(`SELECT (SELECT count(*) FROM catalog_products), (SELECT count(*) FROM inbox)`).Scan(&known, &remembered)
		if known == 3 && remembered == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order service: %d products known, %d inbox entries left, want 3 and 0", known, remembered)
		}
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of the signal")
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer ok.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", ok.URL + "/readyz"}, &out, &out); err != nil {
		t.Errorf("healthy: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", ok.URL + "/other"}, &out, &out); err == nil {
		t.Error("503 passed the health check")
	}
	if err := run(context.Background(), []string{"healthcheck", "http://127.0.0.1:1/readyz"}, &out, &out); err == nil {
		t.Error("unreachable passed the health check")
	}
}
