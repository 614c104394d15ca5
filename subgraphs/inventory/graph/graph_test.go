package graph_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
	"github.com/onlinemart/mart/subgraphs/inventory/graph"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// env is the inventory subgraph served over HTTP as the runtime serves it:
// tokens verified by the shared middleware, root fields guarded by Access.
type env struct {
	db    *pgtest.Database
	inv   *core.Inventory
	srv   *gqltest.Server
	reads *atomic.Int64 // SELECTs on stock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t, "inventory")
	counted, reads := gqltest.CountSelects(db.DB, "stock")
	inv := core.NewInventory(counted, core.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	srv := gqltest.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: inv}}), graph.Access)
	return &env{db: db, inv: inv, srv: srv, reads: reads}
}

// client acts for a new user of role; no role is anonymous.
func (e *env) client(role auth.Role) gqltest.Client {
	if role == "" {
		return e.srv.As(auth.Principal{})
	}
	return e.srv.As(auth.Principal{UserID: uuid.NewString(), Role: role})
}

// product creates a product's stock row as ProductCreated would.
func (e *env) product(t *testing.T) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	err := e.db.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		return e.inv.OnProductCreated(ctx, tx, events.Meta{}, &productv1.ProductCreated{Product: &productv1.Product{Id: id}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type stock struct {
	Available, Reserved, OnHand int
	InStock                     bool
}

type userError struct {
	Field   []string
	Message string
	Code    string
}

type adjusted struct {
	AdjustStock struct {
		Stock    *stock
		Movement *struct {
			ID, Kind                             string
			Quantity, OnHandAfter, ReservedAfter int
			Reason                               *string
		}
		UserErrors []userError
	}
}

const adjustOp = `mutation($in: AdjustStockInput!) { adjustStock(input: $in) {
	stock { available reserved onHand inStock }
	movement { id kind quantity onHandAfter reservedAfter reason }
	userErrors { field message code } } }`

// The router asks for many Product entities in one _entities call; the
// subgraph answers with one stock query, in the order asked, and a product
// without stock has zeros rather than an error or a null.
func TestEntitiesAreResolvedInOneQuery(t *testing.T) {
	e := newEnv(t)
	admin := e.client(auth.Admin)
	var reps []map[string]any
	var want []int
	for i := range 50 {
		id := e.product(t)
		if i%2 == 0 {
			var out adjusted
			admin.MustQuery(t, adjustOp, map[string]any{"in": map[string]any{
				"productId": id, "delta": i + 1, "reason": "delivery", "idempotencyKey": id}}, &out)
			want = append(want, i+1)
		} else {
			want = append(want, 0)
		}
		reps = append(reps, map[string]any{"__typename": "Product", "id": id})
	}
	reps = append(reps, map[string]any{"__typename": "Product", "id": uuid.NewString()})
	want = append(want, 0)

	before := e.reads.Load()
	var out struct {
		Entities []*struct {
			ID    string
			Stock stock
		} `json:"_entities"`
	}
	// Anyone may see stock levels.
	e.client("").MustQuery(t, `query($r: [_Any!]!) { _entities(representations: $r) {
		... on Product { id stock { available reserved onHand inStock } } } }`, map[string]any{"r": reps}, &out)
	if n := e.reads.Load() - before; n != 1 {
		t.Errorf("%d stock queries for 51 entities, want 1", n)
	}
	if len(out.Entities) != 51 {
		t.Fatalf("%d entities, want 51", len(out.Entities))
	}
	for i, ent := range out.Entities {
		if ent == nil || ent.ID != reps[i]["id"] || ent.Stock != (stock{Available: want[i], OnHand: want[i], InStock: want[i] > 0}) {
			t.Errorf("entity %d = %+v, want %d on hand", i, ent, want[i])
		}
	}
}

// Only admins see the ledger and change stock; the payload carries the
// stock after the change, the movement, or user errors.
func TestAdjustStockAndMovementsAreForAdmins(t *testing.T) {
	e := newEnv(t)
	id := e.product(t)
	in := map[string]any{"in": map[string]any{"productId": id, "delta": 7, "reason": "delivery 1", "idempotencyKey": "d-1"}}
	movementsOp := `query($p: ID!, $after: String) { stockMovements(productId: $p, first: 1, after: $after) {
		edges { cursor node { kind quantity onHandAfter } } pageInfo { hasNextPage endCursor } } }`

	for _, c := range []struct {
		role auth.Role
		code string
	}{{"", gqlerr.Unauthenticated}, {auth.Customer, gqlerr.Forbidden}} {
		cl := e.client(c.role)
		for _, op := range []struct {
			q    string
			vars map[string]any
		}{{adjustOp, in}, {movementsOp, map[string]any{"p": id}}} {
			r := cl.Query(t, op.q, op.vars, nil)
			if len(r.Errors) != 1 || r.Errors[0].Code() != c.code {
				t.Errorf("%q: %+v, want %s", c.role, r.Errors, c.code)
			}
		}
	}

	admin := e.client(auth.Admin)
	var out adjusted
	admin.MustQuery(t, adjustOp, in, &out)
	got := out.AdjustStock
	if got.Stock == nil || *got.Stock != (stock{Available: 7, OnHand: 7, InStock: true}) || got.Movement == nil ||
		got.Movement.Kind != "RECEIPT" || got.Movement.Quantity != 7 || len(got.UserErrors) != 0 {
		t.Fatalf("adjustStock = %+v", got)
	}
	first := got.Movement.ID
	admin.MustQuery(t, adjustOp, in, &out) // repeated: the first result
	if out.AdjustStock.Movement == nil || out.AdjustStock.Movement.ID != first || out.AdjustStock.Stock.OnHand != 7 {
		t.Errorf("repeat = %+v", out.AdjustStock)
	}
	admin.MustQuery(t, adjustOp, map[string]any{"in": map[string]any{"productId": id, "delta": -8, "reason": "lost", "idempotencyKey": "l-1"}}, &out)
	if ue := out.AdjustStock.UserErrors; out.AdjustStock.Stock != nil || out.AdjustStock.Movement != nil || len(ue) != 1 ||
		ue[0].Code != "INSUFFICIENT_STOCK" || strings.Join(ue[0].Field, ".") != "input.delta" {
		t.Errorf("too large a write-off = %+v", out.AdjustStock)
	}
	admin.MustQuery(t, adjustOp, map[string]any{"in": map[string]any{"productId": uuid.NewString(), "delta": 1, "reason": "x", "idempotencyKey": "x-1"}}, &out)
	if ue := out.AdjustStock.UserErrors; len(ue) != 1 || ue[0].Code != "NOT_FOUND" {
		t.Errorf("unknown product = %+v", out.AdjustStock)
	}
	admin.MustQuery(t, adjustOp, map[string]any{"in": map[string]any{"productId": id, "delta": -2, "reason": "broken", "idempotencyKey": "b-1"}}, &out)

	type conn struct {
		StockMovements struct {
			Edges []struct {
				Cursor string
				Node   struct {
					Kind                  string
					Quantity, OnHandAfter int
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	var pages []string
	vars := map[string]any{"p": id}
	for {
		var c conn
		admin.MustQuery(t, movementsOp, vars, &c)
		for _, ed := range c.StockMovements.Edges {
			pages = append(pages, ed.Node.Kind)
		}
		if !c.StockMovements.PageInfo.HasNextPage {
			break
		}
		vars["after"] = *c.StockMovements.PageInfo.EndCursor
	}
	if strings.Join(pages, ",") != "ADJUSTMENT,RECEIPT" {
		t.Errorf("movements newest first: %v", pages)
	}
	r := admin.Query(t, `{ stockMovements(productId: "nope") { edges { cursor } } }`, nil, nil)
	if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.BadUserInput {
		t.Errorf("bad product id: %+v", r.Errors)
	}
}
