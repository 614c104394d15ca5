package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/systemtest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The authorization matrix: every Query, Mutation and Subscription field
// of the supergraph, and every entity field one subgraph adds to another's
// type, asked by four callers — anonymous, the customer who owns the data
// (owner), another customer (other) and an admin — once through the router
// and once straight at the subgraph that resolves it, bypassing the router.
// Each cell is the outcome the caller gets:
//
//	ok                 data, no error (the caller was let through)
//	null               the object is null: hidden, as if it did not exist
//	UNAUTHENTICATED …  a top-level GraphQL error with that extensions.code
//	userError:CODE     let through, but the mutation answered a userError
//
// The table is docs/authz-matrix.md; MART_UPDATE_AUTHZ=1 rewrites it, and
// otherwise the test fails when it is not what the system does.

var authzRoles = []string{"anonymous", "owner", "other", "admin"}

const authzGolden = "docs/authz-matrix.md"

// authzFixture is the seeded data the operations refer to.
type authzFixture struct {
	sys                    *systemtest.System
	clients                map[string]systemtest.Client // by role, through the router
	tokens                 map[string]string
	ownerID, otherID       string
	ownerEmail             string
	product                string    // stocked, known to every service
	order                  string    // the owner's, CONFIRMED and paid
	payment                string    // its payment
	cancelOwn, cancelAdmin [2]string // the owner's orders, one per run, cancelled by owner and admin
	ship                   [2]string // the owner's CONFIRMED orders, one per run, shipped and delivered by the admin
	archive                [2]string // products, one per run, archived by the admin
}

// authzOp is one operation and where in its data to look for the outcome.
type authzOp struct {
	query string
	vars  func(fx *authzFixture, role string, run int) map[string]any
	path  []string // into data; numbers index lists
	// trigger, for subscriptions that only speak on a change, makes one.
	trigger func(t testing.TB, fx *authzFixture)
}

type authzRow struct {
	field    string // "Query.me", "User.orders"
	via      string // how the field is reached, for the table
	subgraph string // the subgraph that resolves it, asked directly too
	router   *authzOp
	direct   *authzOp // nil: the router operation, sent to the subgraph
	want     [4]string
	// wantDirect, when the subgraph alone answers differently (an entity
	// the router would not have let the caller reach).
	wantDirect *[4]string
	extra      bool // not a schema field of its own (entities resolved by their owner)
}

func rep(typename string, id func(fx *authzFixture) string) func(*authzFixture, string, int) map[string]any {
	return func(fx *authzFixture, _ string, _ int) map[string]any {
		return map[string]any{"r": []any{map[string]any{"__typename": typename, "id": id(fx)}}}
	}
}

func ids(fn func(fx *authzFixture) map[string]any) func(*authzFixture, string, int) map[string]any {
	return func(fx *authzFixture, _ string, _ int) map[string]any { return fn(fx) }
}

const entities = `query($r: [_Any!]!) { _entities(representations: $r) { `

var (
	ok4     = [4]string{"ok", "ok", "ok", "ok"}
	admin4  = [4]string{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "ok"}
	signed4 = [4]string{"UNAUTHENTICATED", "ok", "ok", "ok"}
	owned4  = [4]string{"null", "ok", "null", "ok"}
	userF4  = [4]string{"UNAUTHENTICATED", "ok", "FORBIDDEN", "ok"}
)

func authzRows() []authzRow {
	product := func(fx *authzFixture) string { return fx.product }
	order := func(fx *authzFixture) string { return fx.order }
	owner := func(fx *authzFixture) string { return fx.ownerID }
	return []authzRow{
		// Queries.
		{field: "Query.product", subgraph: "product", want: ok4, router: &authzOp{
			query: `query($id: ID!) { product(id: $id) { id name } }`, vars: ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.product} }), path: []string{"product"}}},
		{field: "Query.products", subgraph: "product", want: ok4, router: &authzOp{
			query: `{ products(first: 5) { edges { node { id } } } }`, path: []string{"products"}}},
		{field: "Query.me", subgraph: "user", want: [4]string{"null", "ok", "ok", "ok"}, router: &authzOp{
			query: `{ me { id email } }`, path: []string{"me"}}},
		{field: "Query.users", subgraph: "user", want: admin4, router: &authzOp{
			query: `{ users(first: 5) { edges { node { id email } } } }`, path: []string{"users"}}},
		{field: "Query.order", subgraph: "order", want: owned4, router: &authzOp{
			query: `query($id: ID!) { order(id: $id) { id status } }`, vars: ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.order} }), path: []string{"order"}}},
		{field: "Query.orders", subgraph: "order", want: admin4, router: &authzOp{
			query: `{ orders(first: 5) { edges { node { id } } } }`, path: []string{"orders"}}},
		{field: "Query.stockMovements", subgraph: "inventory", want: admin4, router: &authzOp{
			query: `query($id: ID!) { stockMovements(productId: $id, first: 5) { edges { node { id kind } } } }`,
			vars:  ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.product} }), path: []string{"stockMovements"}}},
		{field: "Query.payments", subgraph: "payment", want: admin4, router: &authzOp{
			query: `{ payments(first: 5) { edges { node { id status } } } }`, path: []string{"payments"}}},
		{field: "Query.notificationPreferences", subgraph: "notification", want: signed4, router: &authzOp{
			query: `{ notificationPreferences { marketing { email sms } } }`, path: []string{"notificationPreferences"}}},

		// Mutations. Each role acts on its own data where the mutation
		// changes something, so the outcome does not depend on the order
		// the cells run in.
		{field: "Mutation.createProduct", subgraph: "product", want: admin4, router: &authzOp{
			query: `mutation($in: CreateProductInput!) { createProduct(input: $in) { product { id } userErrors { code } } }`,
			vars: func(_ *authzFixture, role string, run int) map[string]any {
				return map[string]any{"in": map[string]any{"sku": fmt.Sprintf("AUTHZ-NEW-%s-%d", role, run), "name": "New", "price": map[string]any{"amount": 1, "currency": "USD"}}}
			}, path: []string{"createProduct"}}},
		{field: "Mutation.updateProduct", subgraph: "product", want: admin4, router: &authzOp{
			query: `mutation($id: ID!) { updateProduct(input: {id: $id, name: "Authz mug"}) { product { id } userErrors { code } } }`,
			vars:  ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.product} }), path: []string{"updateProduct"}}},
		{field: "Mutation.archiveProduct", subgraph: "product", want: admin4, router: &authzOp{
			query: `mutation($id: ID!) { archiveProduct(input: {id: $id}) { product { id active } userErrors { code } } }`,
			vars: func(fx *authzFixture, _ string, run int) map[string]any {
				return map[string]any{"id": fx.archive[run]}
			}, path: []string{"archiveProduct"}}},
		{field: "Mutation.register", subgraph: "user", want: ok4, router: &authzOp{
			query: `mutation($e: String!) { register(input: {email: $e, password: "register-password", name: "Reg"}) { user { id } userErrors { code } } }`,
			vars: func(_ *authzFixture, role string, run int) map[string]any {
				return map[string]any{"e": fmt.Sprintf("authz-reg-%s-%d@example.com", role, run)}
			}, path: []string{"register"}}},
		{field: "Mutation.login", subgraph: "user", want: ok4, router: &authzOp{
			query: `mutation($e: String!) { login(input: {email: $e, password: "customer-password"}) { accessToken userErrors { code } } }`,
			vars:  ids(func(*authzFixture) map[string]any { return map[string]any{"e": "authz-login@example.com"} }), path: []string{"login"}}},
		{field: "Mutation.refreshToken", subgraph: "user", want: [4]string{"userError:INVALID_TOKEN", "userError:INVALID_TOKEN", "userError:INVALID_TOKEN", "userError:INVALID_TOKEN"}, router: &authzOp{
			query: `mutation { refreshToken(input: {refreshToken: "not-a-refresh-token"}) { accessToken userErrors { code } } }`, path: []string{"refreshToken"}}},
		{field: "Mutation.logout", subgraph: "user", want: [4]string{"userError:INVALID_TOKEN", "userError:INVALID_TOKEN", "userError:INVALID_TOKEN", "userError:INVALID_TOKEN"}, router: &authzOp{
			query: `mutation { logout(input: {refreshToken: "not-a-refresh-token"}) { userErrors { code } } }`, path: []string{"logout"}}},
		{field: "Mutation.updateProfile", subgraph: "user", want: signed4, router: &authzOp{
			query: `mutation { updateProfile(input: {name: "Test Customer"}) { user { id } userErrors { code } } }`, path: []string{"updateProfile"}}},
		{field: "Mutation.changePassword", subgraph: "user", want: signed4, router: &authzOp{
			query: `mutation($p: String!) { changePassword(input: {currentPassword: $p, newPassword: $p}) { userErrors { code } } }`,
			vars: func(_ *authzFixture, role string, _ int) map[string]any {
				if role == "admin" {
					return map[string]any{"p": systemtest.AdminPassword}
				}
				return map[string]any{"p": "customer-password"}
			}, path: []string{"changePassword"}}},
		{field: "Mutation.setUserRole", subgraph: "user", want: admin4, router: &authzOp{
			query: `mutation($id: ID!) { setUserRole(input: {userId: $id, role: CUSTOMER}) { user { id role } userErrors { code } } }`,
			vars:  ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.otherID} }), path: []string{"setUserRole"}}},
		{field: "Mutation.placeOrder", subgraph: "order", want: signed4, router: &authzOp{
			query: placeOrder,
			vars: func(fx *authzFixture, role string, _ int) map[string]any {
				return map[string]any{"in": orderInput("tok_visa", "authz-place-"+role, line(fx.product, 1))}
			}, path: []string{"placeOrder"}}},
		{field: "Mutation.cancelOrder", subgraph: "order", want: [4]string{"UNAUTHENTICATED", "ok", "userError:NOT_FOUND", "ok"}, router: &authzOp{
			query: `mutation($id: ID!) { cancelOrder(input: {orderId: $id}) { order { id status } userErrors { code } } }`,
			vars: func(fx *authzFixture, role string, run int) map[string]any {
				switch role {
				case "owner":
					return map[string]any{"id": fx.cancelOwn[run]}
				case "admin":
					return map[string]any{"id": fx.cancelAdmin[run]}
				}
				return map[string]any{"id": fx.order}
			}, path: []string{"cancelOrder"}}},
		{field: "Mutation.markShipped", subgraph: "order", want: admin4, router: &authzOp{
			query: `mutation($id: ID!) { markShipped(input: {orderId: $id}) { order { id status } userErrors { code } } }`,
			vars:  func(fx *authzFixture, _ string, run int) map[string]any { return map[string]any{"id": fx.ship[run]} }, path: []string{"markShipped"}}},
		{field: "Mutation.markDelivered", subgraph: "order", want: admin4, router: &authzOp{
			query: `mutation($id: ID!) { markDelivered(input: {orderId: $id}) { order { id status } userErrors { code } } }`,
			vars:  func(fx *authzFixture, _ string, run int) map[string]any { return map[string]any{"id": fx.ship[run]} }, path: []string{"markDelivered"}}},
		{field: "Mutation.adjustStock", subgraph: "inventory", want: admin4, router: &authzOp{
			query: `mutation($id: ID!, $key: String!) { adjustStock(input: {productId: $id, delta: 1, reason: "authz", idempotencyKey: $key}) { stock { onHand } userErrors { code } } }`,
			vars: func(fx *authzFixture, role string, run int) map[string]any {
				return map[string]any{"id": fx.product, "key": fmt.Sprintf("authz-%s-%d", role, run)}
			}, path: []string{"adjustStock"}}},
		{field: "Mutation.updateNotificationPreferences", subgraph: "notification", want: signed4, router: &authzOp{
			query: `mutation { updateNotificationPreferences(input: {marketing: {email: false}}) { preferences { marketing { email } } userErrors { code } } }`,
			path:  []string{"updateNotificationPreferences"}}},
		{field: "Mutation.resendNotification", subgraph: "notification",
			want: [4]string{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "userError:NOT_FOUND"}, router: &authzOp{
				query: `mutation { resendNotification(input: {notificationId: "0193c1d4-0000-7000-8000-00000000dead"}) { notification { id } userErrors { code } } }`,
				path:  []string{"resendNotification"}}},

		// Subscriptions.
		{field: "Subscription.productChanged", subgraph: "product", want: ok4, router: &authzOp{
			query: `subscription($id: ID!) { productChanged(id: $id) { id name } }`,
			vars:  ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.product} }), path: []string{"productChanged"},
			trigger: func(t testing.TB, fx *authzFixture) {
				_ = fx.clients["admin"].Query(t, `mutation($id: ID!, $n: String!) { updateProduct(input: {id: $id, name: $n}) { product { id } } }`,
					map[string]any{"id": fx.product, "n": fmt.Sprintf("Authz mug %d", time.Now().UnixNano())}, nil)
			}}},
		{field: "Subscription.orderStatusChanged", subgraph: "order", want: [4]string{"UNAUTHENTICATED", "ok", "NOT_FOUND", "ok"}, router: &authzOp{
			query: `subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status } }`,
			vars:  ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.order} }), path: []string{"orderStatusChanged"}}},

		// Entity fields one subgraph adds to another's type. Through the
		// router a customer reaches users only as `me`, so "other" sees
		// their own; straight at the subgraph anyone can name any user or
		// order in _entities, and the subgraph must refuse by itself.
		{field: "Product.stock", via: "product(id) → inventory", subgraph: "inventory", want: ok4,
			router: &authzOp{query: `query($id: ID!) { product(id: $id) { stock { available } } }`,
				vars: ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.product} }), path: []string{"product", "stock"}},
			direct: &authzOp{query: entities + `... on Product { stock { available } } } }`, vars: rep("Product", product), path: []string{"_entities", "0", "stock"}}},
		{field: "Order.payment", via: "order(id) → payment", subgraph: "payment", want: owned4,
			router: &authzOp{query: `query($id: ID!) { order(id: $id) { payment { id status } } }`,
				vars: ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.order} }), path: []string{"order", "payment"}},
			direct: &authzOp{query: entities + `... on Order { payment { id status } } } }`, vars: rep("Order", order), path: []string{"_entities", "0", "payment"}}},
		{field: "User.orders", via: "me → order", subgraph: "order", want: [4]string{"null", "ok", "ok", "ok"}, wantDirect: &userF4,
			router: &authzOp{query: `{ me { orders(first: 5) { edges { node { id status } } } } }`, path: []string{"me", "orders"}},
			direct: &authzOp{query: entities + `... on User { orders(first: 5) { edges { node { id status } } } } } }`, vars: rep("User", owner), path: []string{"_entities", "0", "orders"}}},
		{field: "User.notifications", via: "me → notification", subgraph: "notification", want: [4]string{"null", "ok", "ok", "ok"}, wantDirect: &userF4,
			router: &authzOp{query: `{ me { notifications(first: 5) { edges { node { id recipient } } } } }`, path: []string{"me", "notifications"}},
			direct: &authzOp{query: entities + `... on User { notifications(first: 5) { edges { node { id recipient } } } } } }`, vars: rep("User", owner), path: []string{"_entities", "0", "notifications"}}},
		{field: "OrderLine.product", via: "order(id) → product", subgraph: "product", want: owned4, extra: true,
			router: &authzOp{query: `query($id: ID!) { order(id: $id) { lines { product { id name } } } }`,
				vars: ids(func(fx *authzFixture) map[string]any { return map[string]any{"id": fx.order} }), path: []string{"order", "lines"}},
			// The catalog is public: the product subgraph resolves any product.
			direct:     &authzOp{query: entities + `... on Product { id name } } }`, vars: rep("Product", product), path: []string{"_entities", "0"}},
			wantDirect: &ok4},
		{field: "Payment.order", via: "payments → order", subgraph: "order", want: admin4, extra: true,
			router: &authzOp{query: `{ payments(first: 5) { edges { node { order { id status } } } } }`, path: []string{"payments"}},
			// The order subgraph resolves Order entities only for their
			// customer and admins.
			direct:     &authzOp{query: entities + `... on Order { id status } } }`, vars: rep("Order", order), path: []string{"_entities", "0"}},
			wantDirect: &owned4},
		{field: "User (entity)", via: "_entities on the user subgraph", subgraph: "user", want: owned4, extra: true,
			direct: &authzOp{query: entities + `... on User { id email } } }`, vars: rep("User", owner), path: []string{"_entities", "0"}}},
	}
}

// TestAuthzMatrix runs every cell of the matrix and checks it against the
// expected outcome and the committed table.
func TestAuthzMatrix(t *testing.T) {
	rows := authzRows()
	checkAuthzCoverage(t, rows) // before anything starts: an unclassified field fails fast
	fx := seedAuthz(t)

	m := runAuthzMatrix(t, fx, rows)
	t.Logf("authorization matrix: %d rows, %d cells, %d match", len(rows), m.cells, m.matched)
	for _, mismatch := range m.mismatches {
		t.Error(mismatch)
	}
	table := authzTable(rows, m)
	golden := filepath.Join(systemtest.RepoRoot(), authzGolden)
	if os.Getenv("MART_UPDATE_AUTHZ") == "1" {
		if err := os.WriteFile(golden, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(golden)
	if err != nil || string(committed) != table {
		t.Errorf("%s is not what the system does (rerun with MART_UPDATE_AUTHZ=1 and review the diff): %v\n%s", authzGolden, err, table)
	}
}

// authzResults are the outcomes of the matrix: each row's through the
// router and straight at its subgraph (by role, as authzRoles), how many
// cells ran and matched, and a line for each that did not.
type authzResults struct {
	router, direct [][4]string // by row
	cells, matched int
	mismatches     []string
}

// runAuthzMatrix runs every cell of rows, through the router (run 0),
// then straight at the subgraphs (run 1).
func runAuthzMatrix(t *testing.T, fx *authzFixture, rows []authzRow) authzResults {
	m := authzResults{router: make([][4]string, len(rows)), direct: make([][4]string, len(rows))}
	for run, direct := range []bool{false, true} {
		for i, row := range rows {
			op, url, want, where, got := row.router, fx.sys.RouterURL, row.want, "router", &m.router[i]
			if direct {
				if row.direct != nil {
					op = row.direct
				}
				url = fx.sys.Services[row.subgraph]
				if row.wantDirect != nil {
					want = *row.wantDirect
				}
				where, got = row.subgraph+" subgraph", &m.direct[i]
			} else if op == nil {
				continue
			}
			for j, role := range authzRoles {
				got[j] = fx.cell(t, op, url, role, run)
				m.cells++
				if got[j] == want[j] {
					m.matched++
					continue
				}
				m.mismatches = append(m.mismatches, fmt.Sprintf("%s as %s through the %s: got %s, want %s", row.field, role, where, got[j], want[j]))
			}
		}
	}
	return m
}

// authzTable is docs/authz-matrix.md for the outcomes m of rows.
func authzTable(rows []authzRow, m authzResults) string {
	var b strings.Builder
	b.WriteString("# Authorization matrix\n\n")
	b.WriteString("Generated by `e2e/authz_test.go` (`MART_UPDATE_AUTHZ=1 go test ./e2e -run TestAuthzMatrix`); do not edit by hand.\n")
	b.WriteString("The test fails when the system answers differently from this table or when a schema field has no row.\n\n")
	b.WriteString("Every Query, Mutation and Subscription field of `schema/supergraph.graphql`, and every entity field one subgraph adds to\n")
	b.WriteString("another's type, asked by four callers: **anon**ymous, the customer who owns the data (**owner**), another customer\n")
	b.WriteString("(**other**) and an **admin** — once through the router, and once straight at the subgraph that resolves it\n")
	b.WriteString("(bypassing the router; entity fields through `_entities`). Rows in *italics* are entities resolved by their own\n")
	b.WriteString("subgraph on another's behalf, listed to show the subgraph checks them too. Through the router a customer\n")
	b.WriteString("reaches a user only as `me`, so for **other** `User.orders` and `User.notifications` are their own (ok); straight at\n")
	b.WriteString("the subgraph, naming the owner in `_entities`, they are FORBIDDEN. `ok` for a public or signed-in mutation means the\n")
	b.WriteString("caller acted on their own data (their own order, profile, preferences).\n\n")
	b.WriteString("Outcomes: `ok` data and no error; `null` the object is hidden (null, as if it did not exist); `UNAUTHENTICATED`,\n")
	b.WriteString("`FORBIDDEN`, `NOT_FOUND` a GraphQL error with that `extensions.code`; `userError:CODE` let through, and the mutation\n")
	b.WriteString("answered that user error (the test input is deliberately one that fails, e.g. an unknown refresh token); `–` not\n")
	b.WriteString("reachable that way.\n\n")
	fmt.Fprintf(&b, "%d rows; %d cells (rows × 4 callers, through the router and directly); %d match the expected outcome.\n\n", len(rows), m.cells, m.matched)
	b.WriteString("| Field | Through the router | anon | owner | other | admin | Subgraph (direct) | anon | owner | other | admin |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, row := range rows {
		name := "`" + row.field + "`"
		if row.extra {
			name = "*" + row.field + "*"
		}
		via := row.via
		if via == "" {
			via = "root field"
		}
		r := m.router[i]
		if row.router == nil {
			via, r = "–", [4]string{"–", "–", "–", "–"}
		}
		d := m.direct[i]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, via,
			r[0], r[1], r[2], r[3], row.subgraph, d[0], d[1], d[2], d[3])
	}
	return b.String()
}

// seedAuthz starts the system and seeds what the operations refer to.
func seedAuthz(t *testing.T) *authzFixture {
	s := startSaga(t)
	sys := s.sys
	fx := &authzFixture{sys: sys, ownerEmail: "authz-owner@example.com", clients: map[string]systemtest.Client{"anonymous": {URL: sys.RouterURL}}}
	fx.product = s.product("AUTHZ-MUG", 500, 1000)
	var owner, other systemtest.Client
	owner, fx.ownerID = sys.Customer(t, fx.ownerEmail)
	other, fx.otherID = sys.Customer(t, "authz-other@example.com")
	sys.Customer(t, "authz-login@example.com")
	fx.clients["owner"], fx.clients["other"], fx.clients["admin"] = owner, other, s.admin
	fx.tokens = map[string]string{}
	for role, c := range fx.clients {
		fx.tokens[role] = c.Token
	}
	placeAs := func(key string) string {
		p := s.place(owner, orderInput("tok_visa", key, line(fx.product, 1)))
		if p.PlaceOrder.Order == nil {
			t.Fatalf("place %s: %+v", key, p.PlaceOrder.UserErrors)
		}
		return p.PlaceOrder.Order.ID
	}
	fx.order = placeAs("authz-order")
	for run := range 2 {
		fx.cancelOwn[run] = placeAs(fmt.Sprintf("authz-cancel-own-%d", run))
		fx.cancelAdmin[run] = placeAs(fmt.Sprintf("authz-cancel-admin-%d", run))
		fx.ship[run] = placeAs(fmt.Sprintf("authz-ship-%d", run))
		p := create(t, sys, map[string]any{"sku": fmt.Sprintf("AUTHZ-ARCH-%d", run), "name": "To archive", "price": map[string]any{"amount": 1, "currency": "USD"}})
		if p.Product == nil {
			t.Fatalf("create: %+v", p.UserErrors)
		}
		fx.archive[run] = p.Product.ID
	}
	s.settle(owner, fx.order, "CONFIRMED")
	s.settle(owner, fx.ship[0], "CONFIRMED")
	s.settle(owner, fx.ship[1], "CONFIRMED")
	testrun.WaitFor(t, "the order's payment", func() bool {
		var out struct {
			Order *struct{ Payment *struct{ ID, Status string } }
		}
		owner.MustQuery(t, `query($id: ID!) { order(id: $id) { payment { id status } } }`, map[string]any{"id": fx.order}, &out)
		if out.Order != nil && out.Order.Payment != nil && out.Order.Payment.Status == "SUCCEEDED" {
			fx.payment = out.Order.Payment.ID
		}
		return fx.payment != ""
	})
	return fx
}

// cell runs op as role against url and returns the outcome.
func (fx *authzFixture) cell(t *testing.T, op *authzOp, url, role string, run int) string {
	t.Helper()
	var v map[string]any
	if op.vars != nil {
		v = op.vars(fx, role, run)
	}
	token := fx.tokens[role]
	var outcome, raw string
	if strings.HasPrefix(op.query, "subscription") {
		var trigger func()
		if op.trigger != nil {
			trigger = func() { op.trigger(t, fx) }
		}
		// Browsers cannot set headers on a websocket: through the router
		// the token travels in connection_init. The subgraphs take it from
		// the upgrade request, as the router sends it.
		outcome, raw = wsOutcome(t, url, token, url != fx.sys.RouterURL, op.query, v, op.path, trigger)
	} else {
		r := systemtest.Client{URL: url, Token: token}.Query(t, op.query, v, nil)
		if r.Status >= 500 {
			t.Errorf("%s as %s: status %d", op.query, role, r.Status)
		}
		outcome = outcomeOf(r, op.path)
		errs, _ := json.Marshal(r.Errors)
		raw = string(r.Data) + string(errs)
	}
	// Whatever the outcome, nobody but the owner and admins sees the
	// owner's email, order or payment — unless they named it themselves.
	if role == "anonymous" || role == "other" {
		asked, _ := json.Marshal(v)
		for _, secret := range []string{fx.ownerEmail, fx.order, fx.payment} {
			if secret != "" && !strings.Contains(string(asked), secret) && strings.Contains(raw, secret) {
				t.Errorf("%s as %s leaked %s: %s", op.query, role, secret, raw)
			}
		}
	}
	return outcome
}

// outcomeOf classifies a response: the first error's code, null when the
// object at path is null, the first userError's code, or ok.
func outcomeOf(r systemtest.Response, path []string) string {
	if len(r.Errors) > 0 {
		if c := r.Errors[0].Code(); c != "" {
			return c
		}
		return "ERROR"
	}
	var v any
	_ = json.Unmarshal(r.Data, &v)
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			var i int
			if _, err := fmt.Sscan(seg, &i); err != nil || i >= len(x) {
				v = nil
			} else {
				v = x[i]
			}
		default:
			v = nil
		}
		if v == nil {
			return "null"
		}
	}
	if m, ok := v.(map[string]any); ok {
		if ue, ok := m["userErrors"].([]any); ok && len(ue) > 0 {
			if e, ok := ue[0].(map[string]any); ok {
				return fmt.Sprint("userError:", e["code"])
			}
		}
	}
	return "ok"
}

type wsFrame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a graphql-transport-ws connection to an http(s) GraphQL URL.
func dialWS(ctx context.Context, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
}

// wsOutcome subscribes once and classifies the first thing the server
// says: the outcome of its first result, an error's code, "complete", or
// "closed:<code>". trigger, when set, is called every second until then.
func wsOutcome(t *testing.T, url, token string, tokenInHeader bool, query string, vars map[string]any, path []string, trigger func()) (outcome, raw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	header := http.Header{}
	init := map[string]any{}
	if token != "" && tokenInHeader {
		header.Set("Authorization", "Bearer "+token)
	} else if token != "" {
		init["Authorization"] = "Bearer " + token
	}
	conn, resp, err := dialWS(ctx, url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return fmt.Sprintf("upgrade refused: %d", status), ""
	}
	defer conn.CloseNow()
	payload, _ := json.Marshal(init)
	op, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err := wsjson.Write(ctx, conn, wsFrame{Type: "connection_init", Payload: payload}); err != nil {
		t.Fatalf("connection_init: %v", err)
	}
	subscribed := false
	done := make(chan struct{})
	defer close(done)
	for {
		var m wsFrame
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return fmt.Sprintf("closed:%d", code), ""
			}
			return "no answer: " + err.Error(), ""
		}
		if m.Type == "connection_ack" && !subscribed {
			subscribed = true
			if err := wsjson.Write(ctx, conn, wsFrame{ID: "1", Type: "subscribe", Payload: op}); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			if trigger != nil {
				go everySecond(done, trigger)
			}
			continue
		}
		if m.Type == "ping" {
			_ = wsjson.Write(ctx, conn, wsFrame{Type: "pong"})
			continue
		}
		if outcome, raw, ok := frameOutcome(m, path); ok {
			return outcome, raw
		}
	}
}

// everySecond calls fn every second until done closes.
func everySecond(done <-chan struct{}, fn func()) {
	for {
		select {
		case <-done:
			return
		case <-time.After(time.Second):
			fn()
		}
	}
}

// frameOutcome classifies a result ("next", by the data at path), an
// error or a completion; ok is false for any other message.
func frameOutcome(m wsFrame, path []string) (outcome, raw string, ok bool) {
	switch m.Type {
	case "next":
		var r systemtest.Response
		_ = json.Unmarshal(m.Payload, &r)
		return outcomeOf(r, path), string(m.Payload), true
	case "error":
		var errs []systemtest.Error
		_ = json.Unmarshal(m.Payload, &errs)
		if len(errs) == 0 {
			return "ERROR", string(m.Payload), true
		}
		return outcomeOf(systemtest.Response{Errors: errs}, path), string(m.Payload), true
	case "complete":
		return "complete", "", true
	}
	return "", "", false
}

// checkAuthzCoverage fails when a root field of the supergraph or an
// entity field contributed by another subgraph has no row, when a row
// names a field the schema does not have, or when a root field's row
// names the wrong subgraph.
func checkAuthzCoverage(t *testing.T, rows []authzRow) {
	t.Helper()
	required := authzFields(t)
	have := map[string]bool{}
	for _, r := range rows {
		have[r.field] = true
		sub, ok := required[r.field]
		switch {
		case !ok && !r.extra:
			t.Errorf("authz row %s: no such field in the schema (remove the row)", r.field)
		case ok && sub != r.subgraph:
			t.Errorf("authz row %s: resolved by the %s subgraph, the row says %s", r.field, sub, r.subgraph)
		}
	}
	var missing []string
	for f := range required {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	for _, f := range missing {
		t.Errorf("%s has no row in the authorization matrix: classify it in authzRows (e2e/authz_test.go)", f)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// authzFields are the fields the matrix must have a row for, each with
// the subgraph that resolves it: every root field of the supergraph and
// every field a subgraph adds to another's entity.
func authzFields(t *testing.T) map[string]string {
	t.Helper()
	root := systemtest.RepoRoot()
	src, err := os.ReadFile(filepath.Join(root, "schema", "supergraph.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "supergraph.graphql", Input: string(src)})
	if gerr != nil {
		t.Fatalf("supergraph: %v", gerr)
	}
	required := map[string]string{} // field → the subgraph resolving it ("" unknown yet)
	for _, d := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if d == nil {
			continue
		}
		for _, f := range d.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				required[d.Name+"."+f.Name] = ""
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "subgraphs", "*", "schema.graphqls"))
	if want := len(system.ServiceNames()); len(files) != want {
		t.Fatalf("found %d subgraph schemas, want %d", len(files), want)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc, perr := parser.ParseSchema(&ast.Source{Name: file, Input: string(src)})
		if perr != nil {
			t.Fatalf("%s: %v", file, perr)
		}
		addSubgraphFields(required, filepath.Base(filepath.Dir(file)), doc)
	}
	return required
}

// addSubgraphFields adds to required the root fields subgraph name
// resolves and the fields its schema doc adds to other subgraphs'
// resolvable entities (not their keys, not external ones).
func addSubgraphFields(required map[string]string, name string, doc *ast.SchemaDocument) {
	for _, d := range append(doc.Definitions, doc.Extensions...) {
		switch d.Name {
		case "Query", "Mutation", "Subscription":
			for _, f := range d.Fields {
				required[d.Name+"."+f.Name] = name
			}
			continue
		}
		key := d.Directives.ForName("key")
		if key == nil || strings.EqualFold(d.Name, name) {
			continue // not an entity, or this subgraph owns it
		}
		if r := key.Arguments.ForName("resolvable"); r != nil && r.Value.Raw == "false" {
			continue
		}
		keyFields := strings.Fields(key.Arguments.ForName("fields").Value.Raw)
		for _, f := range d.Fields {
			if !slices.Contains(keyFields, f.Name) && f.Directives.ForName("external") == nil {
				required[d.Name+"."+f.Name] = name
			}
		}
	}
}
