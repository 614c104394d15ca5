package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// Bad requests get clear GraphQL errors with a code and a 4xx status, and
// change nothing.
func TestBadRequestsThroughRouter(t *testing.T) {
	sys := systemtest.Start(t)
	nested := "__typename"
	for range 50 {
		nested = "__schema { types { fields { type { " + nested + " } } } }"
	}

	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"invalid JSON", "application/json", `{"query": "{ products`, 400, "BAD_REQUEST"},
		{"no query", "application/json", `{"variables": {}}`, 400, "BAD_REQUEST"},
		{"2 MB body", "application/json", `{"query": "{ products { edges { cursor } } }", "x": "` + strings.Repeat("a", 2<<20) + `"}`, 413, "PAYLOAD_TOO_LARGE"},
		{"syntax error", "application/json", `{"query": "{ products { edges "}`, 400, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", "application/json", `{"query": "{ products { nope } }"}`, 400, "GRAPHQL_VALIDATION_FAILED"},
		{"wrong argument type", "application/json", `{"query": "{ products(first: \"ten\") { edges { cursor } } }"}`, 400, "GRAPHQL_VALIDATION_FAILED"},
		{"wrong variable type", "application/json", `{"query": "query($n: Int) { products(first: $n) { edges { cursor } } }", "variables": {"n": "ten"}}`, 400, ""},
		{"depth 50", "application/json", `{"query": "{ ` + nested + ` }"}`, 400, "QUERY_LIMIT_EXCEEDED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := systemtest.Post(t, sys.RouterURL, c.contentType, []byte(c.body), nil)
			if r.Status != c.status || len(r.Errors) == 0 {
				t.Fatalf("status %d errors %+v, want %d with errors", r.Status, r.Errors, c.status)
			}
			if c.code != "" && r.Errors[0].Code() != c.code {
				t.Errorf("code %q (%s), want %q", r.Errors[0].Code(), r.Errors[0].Message, c.code)
			}
			if r.Errors[0].Message == "" {
				t.Error("error without a message")
			}
		})
	}

	t.Run("mutation over GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, sys.RouterURL+`?query=mutation{archiveProduct(input:{id:"x"}){product{id}}}`, nil)
		r := systemtest.Do(t, req, nil)
		if r.Status != http.StatusMethodNotAllowed || len(r.Errors) == 0 {
			t.Fatalf("status %d errors %+v", r.Status, r.Errors)
		}
	})

	t.Run("page size and cursor", func(t *testing.T) {
		for _, q := range []string{`{ products(first: 500) { edges { cursor } } }`, `{ products(after: "bogus") { edges { cursor } } }`} {
			r := sys.Query(t, q, nil, nil)
			if len(r.Errors) == 0 || r.Errors[0].Code() != "BAD_USER_INPUT" {
				t.Errorf("%s: %+v", q, r.Errors)
			}
		}
	})

	t.Run("invalid product input", func(t *testing.T) { invalidProductInput(t, sys) })
	t.Run("duplicate sku", func(t *testing.T) { duplicateSKU(t, sys) })

	// Only DUP-1 was ever written.
	var c connection
	sys.MustQuery(t, listProducts, map[string]any{"first": 100}, &c)
	if len(c.Products.Edges) != 1 || c.Products.Edges[0].Node.SKU != "DUP-1" {
		t.Fatalf("bad input wrote products: %+v", c.Products.Edges)
	}
}

// invalidProductInput creates products with a field each that is wrong:
// each is refused with one user error naming the field.
func invalidProductInput(t *testing.T, sys *systemtest.System) {
	cases := []struct {
		name  string
		input map[string]any
		field []string
		code  string
	}{
		{"negative price", map[string]any{"sku": "OK-1", "name": "Mug", "price": map[string]any{"amount": -1, "currency": "USD"}}, []string{"input", "price", "amount"}, "OUT_OF_RANGE"},
		{"empty sku", map[string]any{"sku": "", "name": "Mug", "price": map[string]any{"amount": 1, "currency": "USD"}}, []string{"input", "sku"}, "REQUIRED"},
		{"bad sku", map[string]any{"sku": "no spaces!", "name": "Mug", "price": map[string]any{"amount": 1, "currency": "USD"}}, []string{"input", "sku"}, "INVALID"},
		{"unknown currency", map[string]any{"sku": "OK-2", "name": "Mug", "price": map[string]any{"amount": 1, "currency": "XYZ"}}, []string{"input", "price", "currency"}, "INVALID"},
		{"long name", map[string]any{"sku": "OK-3", "name": strings.Repeat("n", 201), "price": map[string]any{"amount": 1, "currency": "USD"}}, []string{"input", "name"}, "TOO_LONG"},
	}
	for _, c := range cases {
		got := create(t, sys, c.input)
		if got.Product != nil || len(got.UserErrors) != 1 {
			t.Errorf("%s: %+v", c.name, got)
			continue
		}
		e := got.UserErrors[0]
		if !slices.Equal(e.Field, c.field) || e.Code != c.code || !strings.Contains(e.Message, c.field[len(c.field)-1]) {
			t.Errorf("%s: got %+v, want field %v code %s and a message naming the field", c.name, e, c.field, c.code)
		}
	}
}

// duplicateSKU creates DUP-1, then dup-1: refused as a duplicate (SKUs
// are case-insensitive).
func duplicateSKU(t *testing.T, sys *systemtest.System) {
	in := map[string]any{"sku": "DUP-1", "name": "Mug", "price": map[string]any{"amount": 1, "currency": "USD"}}
	if got := create(t, sys, in); got.Product == nil {
		t.Fatalf("first create: %+v", got)
	}
	in["sku"] = "dup-1" // SKUs are case-insensitive
	got := create(t, sys, in)
	if got.Product != nil || len(got.UserErrors) != 1 || got.UserErrors[0].Code != "DUPLICATE" || !slices.Equal(got.UserErrors[0].Field, []string{"input", "sku"}) {
		t.Fatalf("duplicate: %+v", got)
	}
}
