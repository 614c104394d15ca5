// Package bench holds Online Mart's benchmarks: the whole system started
// in-process (testkit/systemtest) and driven through the router. Every
// file is a _test.go file with Benchmark functions only, so `go test ./...`
// compiles them and runs none; `make bench` runs them.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// httpClient keeps enough idle connections for every concurrent caller of
// a benchmark (net/http's default of 2 per host would make most requests
// open a new connection), and asks for no gzip, so that no gateway spends
// CPU compressing.
var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	},
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// call sends one GraphQL operation to url and decodes its data into out;
// failures are errors (gqltest.Call), so any goroutine may call it.
func call(ctx context.Context, url, token, query string, vars map[string]any, out any) error {
	return gqltest.Call(ctx, httpClient, url, token, query, vars, out)
}

type userError struct {
	Field   []string
	Message string
	Code    string
}

// mart is a running system with an admin token.
type mart struct {
	sys   *systemtest.System
	admin string // admin access token
}

func startMart(b *testing.B) *mart {
	b.Helper()
	sys := systemtest.Start(b)
	return &mart{sys: sys, admin: sys.Login(b, systemtest.AdminEmail, systemtest.AdminPassword)}
}

const createProduct = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) { product { id } userErrors { field message code } }
}`

const adjustStock = `mutation($id: ID!, $n: Int!, $key: String!) {
  adjustStock(input: {productId: $id, delta: $n, reason: "receipt", idempotencyKey: $key}) { userErrors { field message code } }
}`

// products creates n products priced in USD; with units > 0 it also
// receives that many units of each, retrying until inventory has heard of
// the product (it learns of it from a product event).
func (m *mart) products(b *testing.B, prefix string, n, units int) []string {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		var out struct {
			CreateProduct struct {
				Product    *struct{ ID string }
				UserErrors []userError
			}
		}
		sku := fmt.Sprintf("%s-%03d", prefix, i)
		in := map[string]any{"sku": sku, "name": "Bench " + sku, "price": map[string]any{"amount": 100 + i, "currency": "USD"}}
		if err := call(ctx, m.sys.RouterURL, m.admin, createProduct, map[string]any{"input": in}, &out); err != nil {
			b.Fatalf("createProduct %s: %v", sku, err)
		}
		if out.CreateProduct.Product == nil {
			b.Fatalf("createProduct %s: %+v", sku, out.CreateProduct.UserErrors)
		}
		ids[i] = out.CreateProduct.Product.ID
	}
	if units > 0 {
		for i, id := range ids {
			waitFor(b, "stock for "+id, func() bool {
				var out struct {
					AdjustStock struct{ UserErrors []userError }
				}
				err := call(ctx, m.sys.RouterURL, m.admin, adjustStock, map[string]any{"id": id, "n": units, "key": fmt.Sprintf("receipt-%s-%d", prefix, i)}, &out)
				return err == nil && len(out.AdjustStock.UserErrors) == 0
			})
		}
	}
	return ids
}

// customers registers n customers in parallel and returns their tokens.
func (m *mart) customers(b *testing.B, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var out struct {
				Register struct {
					AccessToken *string
					UserErrors  []userError
				}
			}
			email := fmt.Sprintf("bench-%d-%d@example.com", time.Now().UnixNano(), i)
			errs[i] = call(context.Background(), m.sys.RouterURL, "", `mutation($e: String!) { register(input: {email: $e, password: "customer-password", name: "Bench Customer"}) { accessToken userErrors { field message code } } }`,
				map[string]any{"e": email}, &out)
			if errs[i] == nil && out.Register.AccessToken == nil {
				errs[i] = fmt.Errorf("register: %+v", out.Register.UserErrors)
			}
			if errs[i] == nil {
				tokens[i] = *out.Register.AccessToken
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return tokens
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
