// Package e2e tests Online Mart as a client sees it: the whole system runs
// in-process on ephemeral ports, and every request goes through the router.
package e2e

import (
	"fmt"
	"testing"

	"github.com/onlinemart/mart/testkit/systemtest"
)

const createProduct = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) {
    product { id sku name description category active price { amount currency } }
    userErrors { field message code }
  }
}`

type userError struct {
	Field   []string
	Message string
	Code    string
}

type product struct {
	ID, SKU, Name, Description, Category string
	Active                               bool
	Price                                struct {
		Amount   int64
		Currency string
	}
}

type productPayload struct {
	Product    *product
	UserErrors []userError
}

func create(t *testing.T, sys *systemtest.System, input map[string]any) productPayload {
	t.Helper()
	var out struct{ CreateProduct productPayload }
	sys.Admin(t).MustQuery(t, createProduct, map[string]any{"input": input}, &out)
	return out.CreateProduct
}

type connection struct {
	Products struct {
		Edges []struct {
			Cursor string
			Node   product
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

const listProducts = `query($first: Int, $after: String, $filter: ProductFilter) {
  products(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id sku name category price { amount currency } } }
    pageInfo { hasNextPage endCursor }
  }
}`

// A newcomer's first steps: create a product and find it in the listing.
func TestCreateAndListProduct(t *testing.T) {
	sys := systemtest.Start(t)
	got := create(t, sys, map[string]any{
		"sku": " mug-0001 ", "name": "Blue mug", "description": "Holds tea.",
		"category": "kitchen", "price": map[string]any{"amount": 1250, "currency": "eur"},
	})
	if len(got.UserErrors) != 0 || got.Product == nil {
		t.Fatalf("createProduct: %+v", got)
	}
	p := got.Product
	if p.SKU != "MUG-0001" || p.Price.Currency != "EUR" || p.Price.Amount != 1250 || !p.Active {
		t.Errorf("stored product not normalized as documented: %+v", p)
	}

	var list connection
	sys.MustQuery(t, listProducts, map[string]any{"first": 10}, &list)
	if len(list.Products.Edges) != 1 || list.Products.Edges[0].Node.ID != p.ID || list.Products.PageInfo.HasNextPage {
		t.Fatalf("listing: %+v", list)
	}

	var one struct{ Product *product }
	sys.MustQuery(t, `query($id: ID!) { product(id: $id) { id name } }`, map[string]any{"id": p.ID}, &one)
	if one.Product == nil || one.Product.Name != "Blue mug" {
		t.Fatalf("product(id): %+v", one)
	}
}

// 120 products paged 50 at a time: three pages, every product exactly once,
// newest first; search and filters narrow the listing.
func TestPaginationSearchAndFilters(t *testing.T) {
	sys := systemtest.Start(t)
	want := map[string]bool{}
	for i := range 120 {
		category, name := "garden", fmt.Sprintf("Plain item %d", i)
		if i%3 == 0 {
			category = "kitchen"
		}
		if i%40 == 0 {
			name = fmt.Sprintf("Copper kettle %d", i)
		}
		got := create(t, sys, map[string]any{
			"sku": fmt.Sprintf("SKU-%04d", i), "name": name, "category": category,
			"price": map[string]any{"amount": 100 * (i + 1), "currency": "USD"},
		})
		if got.Product == nil {
			t.Fatalf("create %d: %+v", i, got.UserErrors)
		}
		want[got.Product.ID] = true
	}

	seen := map[string]bool{}
	var order []string
	var after any
	pages := 0
	for {
		var c connection
		sys.MustQuery(t, listProducts, map[string]any{"first": 50, "after": after}, &c)
		pages++
		for _, e := range c.Products.Edges {
			if seen[e.Node.ID] {
				t.Fatalf("page %d repeats %s", pages, e.Node.SKU)
			}
			seen[e.Node.ID] = true
			order = append(order, e.Node.SKU)
		}
		if !c.Products.PageInfo.HasNextPage {
			break
		}
		after = *c.Products.PageInfo.EndCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || len(seen) != 120 {
		t.Fatalf("got %d pages and %d products, want 3 and 120", pages, len(seen))
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("product %s missing from the pages", id)
		}
	}
	if order[0] != "SKU-0119" || order[119] != "SKU-0000" {
		t.Errorf("want newest first, got %s … %s", order[0], order[119])
	}

	count := func(filter map[string]any) int {
		var c connection
		sys.MustQuery(t, listProducts, map[string]any{"first": 100, "filter": filter}, &c)
		return len(c.Products.Edges)
	}
	if n := count(map[string]any{"search": "kettle"}); n != 3 {
		t.Errorf("search kettle: %d, want 3", n)
	}
	if n := count(map[string]any{"search": "copper kettles"}); n != 3 {
		t.Errorf("search is stemmed: %d, want 3", n)
	}
	if n := count(map[string]any{"category": "kitchen"}); n != 40 {
		t.Errorf("category kitchen: %d, want 40", n)
	}
	if n := count(map[string]any{"minPrice": 1000, "maxPrice": 2000}); n != 11 {
		t.Errorf("price 1000..2000: %d, want 11", n)
	}
	if n := count(map[string]any{"category": "kitchen", "maxPrice": 1000}); n != 4 {
		t.Errorf("kitchen up to 1000: %d, want 4", n)
	}
}

func TestUpdateAndArchive(t *testing.T) {
	sys := systemtest.Start(t)
	p := create(t, sys, map[string]any{"sku": "LAMP-1", "name": "Lamp", "price": map[string]any{"amount": 5000, "currency": "USD"}}).Product

	var upd struct{ UpdateProduct productPayload }
	sys.Admin(t).MustQuery(t, `mutation($input: UpdateProductInput!) { updateProduct(input: $input) {
		product { id name price { amount currency } category } userErrors { field message code } } }`,
		map[string]any{"input": map[string]any{"id": p.ID, "name": "Desk lamp", "price": map[string]any{"amount": 4500, "currency": "USD"}}}, &upd)
	if got := upd.UpdateProduct.Product; got == nil || got.Name != "Desk lamp" || got.Price.Amount != 4500 {
		t.Fatalf("updateProduct: %+v", upd.UpdateProduct)
	}

	var arch struct{ ArchiveProduct productPayload }
	for range 2 { // archiving twice is not an error
		sys.Admin(t).MustQuery(t, `mutation($id: ID!) { archiveProduct(input: {id: $id}) { product { id active } userErrors { code } } }`,
			map[string]any{"id": p.ID}, &arch)
		if arch.ArchiveProduct.Product == nil || arch.ArchiveProduct.Product.Active {
			t.Fatalf("archiveProduct: %+v", arch.ArchiveProduct)
		}
	}
	var c connection
	sys.MustQuery(t, listProducts, map[string]any{"filter": map[string]any{"active": true}}, &c)
	if len(c.Products.Edges) != 0 {
		t.Errorf("archived product listed as active: %+v", c)
	}

	sys.Admin(t).MustQuery(t, `mutation { archiveProduct(input: {id: "0193c1d4-0000-7000-8000-000000000001"}) { product { id } userErrors { field code } } }`, nil, &arch)
	if errs := arch.ArchiveProduct.UserErrors; len(errs) != 1 || errs[0].Code != "NOT_FOUND" {
		t.Errorf("unknown id: %+v", arch.ArchiveProduct)
	}
}
