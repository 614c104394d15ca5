package graph_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	"github.com/onlinemart/mart/subgraphs/payment/core"
	"github.com/onlinemart/mart/subgraphs/payment/graph"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// env is the payment subgraph served over HTTP as the runtime serves it:
// tokens verified by the shared middleware, root fields guarded by Access.
type env struct {
	t        *testing.T
	db       *pgtest.Database
	payments *core.Payments
	srv      *gqltest.Server
	reads    *atomic.Int64 // SELECTs on payments
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t, "payment")
	counted, reads := gqltest.CountSelects(db.DB, "payments")
	payments := core.NewPayments(counted, core.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	srv := gqltest.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: payments}}), graph.Access)
	return &env{t: t, db: db, payments: payments, srv: srv, reads: reads}
}

// client acts for p; nil is anonymous.
func (e *env) client(p *auth.Principal) gqltest.Client {
	e.t.Helper()
	if p == nil {
		return e.srv.As(auth.Principal{})
	}
	return e.srv.As(*p)
}

// pay runs an order of user through the saga as far as payment goes: placed,
// reserved and charged with token. It returns the order id.
func (e *env) pay(user, token string, amount int64) string {
	e.t.Helper()
	ctx := context.Background()
	order := uuid.Must(uuid.NewV7()).String()
	err := e.db.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := e.payments.OnOrderPlaced(ctx, tx, events.Meta{}, &orderv1.OrderPlaced{OrderId: order, UserId: user,
			PaymentToken: token, Total: &commonv1.Money{Amount: amount, Currency: "EUR"}}); err != nil {
			return err
		}
		return e.payments.OnStockReserved(ctx, tx, events.Meta{}, &inventoryv1.StockReserved{OrderId: order})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		worked, err := e.payments.ProcessNext(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if !worked {
			return order
		}
	}
}

type paymentView struct {
	ID, Status, Provider string
	Amount               struct {
		Amount   int64
		Currency string
	}
	FailureReason, FailureCode *string
	CreatedAt                  time.Time
}

type orderView struct {
	ID      string
	Payment *paymentView
}

const entitiesOp = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id payment {
	id status provider amount { amount currency } failureReason failureCode createdAt } } } }`

func (e *env) entities(viewer *auth.Principal, orderIDs ...string) []orderView {
	e.t.Helper()
	reps := make([]map[string]any, len(orderIDs))
	for i, id := range orderIDs {
		reps[i] = map[string]any{"__typename": "Order", "id": id}
	}
	var out struct {
		Entities []orderView `json:"_entities"`
	}
	r := e.client(viewer).Query(e.t, entitiesOp, map[string]any{"r": reps}, &out)
	if len(r.Errors) > 0 {
		e.t.Fatalf("_entities: %+v", r.Errors)
	}
	return out.Entities
}

// statuses lists each order's payment status, "" for a null payment.
func statuses(orders []orderView) []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		if o.Payment != nil {
			out[i] = o.Payment.Status
		}
	}
	return out
}

// Order.payment is visible to the customer who placed the order and to
// admins; anyone else gets null, without an error (and a caller who may
// see nothing causes no query).
func TestOrderPaymentIsVisibleToItsOwnerAndAdmins(t *testing.T) {
	e := newEnv(t)
	alice, bob := uuid.NewString(), uuid.NewString()
	aliceOrder := e.pay(alice, core.TokenVisa, 1250)
	bobOrder := e.pay(bob, core.TokenInsufficientFunds, 990)
	unknown := uuid.NewString()
	ids := []string{aliceOrder, bobOrder, unknown, "not-a-uuid"}

	before := e.reads.Load()
	if got := statuses(e.entities(nil, ids...)); !slices.Equal(got, []string{"", "", "", ""}) {
		t.Errorf("anonymous sees %v", got)
	}
	if e.reads.Load() != before {
		t.Error("payments were looked up for a caller who may see none")
	}
	for _, c := range []struct {
		name   string
		viewer auth.Principal
		want   []string
	}{
		{"alice", auth.Principal{UserID: alice, Role: auth.Customer}, []string{"SUCCEEDED", "", "", ""}},
		{"bob", auth.Principal{UserID: bob, Role: auth.Customer}, []string{"", "FAILED", "", ""}},
		{"carol", auth.Principal{UserID: uuid.NewString(), Role: auth.Customer}, []string{"", "", "", ""}},
		{"admin", auth.Principal{UserID: uuid.NewString(), Role: auth.Admin}, []string{"SUCCEEDED", "FAILED", "", ""}},
	} {
		got := e.entities(&c.viewer, ids...)
		if !slices.Equal(statuses(got), c.want) {
			t.Errorf("%s sees %v, want %v", c.name, statuses(got), c.want)
		}
		for i, o := range got {
			if o.ID != ids[i] {
				t.Errorf("%s: entity %d is order %q, want %q", c.name, i, o.ID, ids[i])
			}
		}
	}

	admin := auth.Principal{UserID: uuid.NewString(), Role: auth.Admin}
	got := e.entities(&admin, aliceOrder, bobOrder)
	if p := got[0].Payment; p.Amount.Amount != 1250 || p.Amount.Currency != "EUR" || p.Provider != "sandbox" ||
		p.FailureReason != nil || p.CreatedAt.IsZero() {
		t.Errorf("alice's payment: %+v", p)
	}
	if p := got[1].Payment; p.FailureCode == nil || *p.FailureCode != core.CodeInsufficientFunds || p.FailureReason == nil {
		t.Errorf("bob's payment: %+v", p)
	}
}

// The router asks for many orders' payments in one _entities call; the
// subgraph answers it with one query, in the order asked.
func TestOrderPaymentsResolveInOneQuery(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	var ids []string
	var want []int64
	for i := range 25 {
		// Ask in reverse creation order to catch order mix-ups.
		ids = append([]string{e.pay(user, core.TokenVisa, int64(100+i))}, ids...)
		want = append([]int64{int64(100 + i)}, want...)
	}
	before := e.reads.Load()
	got := e.entities(&auth.Principal{UserID: user, Role: auth.Customer}, ids...)
	if n := e.reads.Load() - before; n != 1 {
		t.Errorf("%d payment queries for %d orders, want 1", n, len(ids))
	}
	for i, o := range got {
		if o.Payment == nil || o.Payment.Amount.Amount != want[i] {
			t.Fatalf("order %d: %+v, want amount %d", i, o.Payment, want[i])
		}
	}
}

// Admins page through payments, newest first, optionally by status;
// others may not list them.
func TestAdminListsPayments(t *testing.T) {
	e := newEnv(t)
	user := uuid.NewString()
	var orders []string
	for _, tok := range []string{core.TokenVisa, core.TokenChargeDeclined, core.TokenVisa, core.TokenVisa} {
		orders = append(orders, e.pay(user, tok, 100))
	}
	admin := e.client(&auth.Principal{UserID: uuid.NewString(), Role: auth.Admin})
	type conn struct {
		Payments struct {
			Edges []struct {
				Node struct {
					Status string
					Order  struct{ ID string }
				}
				Cursor string
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	const op = `query($first: Int, $after: String, $status: PaymentStatus) {
		payments(first: $first, after: $after, filter: {status: $status}) {
			edges { node { status order { id } } cursor } pageInfo { hasNextPage endCursor } } }`

	var seen []string
	var after any
	for range 3 {
		var out conn
		admin.MustQuery(t, op, map[string]any{"first": 2, "after": after}, &out)
		for _, edge := range out.Payments.Edges {
			seen = append(seen, edge.Node.Order.ID)
		}
		if !out.Payments.PageInfo.HasNextPage {
			break
		}
		after = *out.Payments.PageInfo.EndCursor
	}
	newestFirst := slices.Clone(orders)
	slices.Reverse(newestFirst)
	if !slices.Equal(seen, newestFirst) {
		t.Errorf("pages list orders %v, want newest first %v", seen, newestFirst)
	}

	var failed conn
	admin.MustQuery(t, op, map[string]any{"status": "FAILED"}, &failed)
	if edges := failed.Payments.Edges; len(edges) != 1 || edges[0].Node.Order.ID != orders[1] || edges[0].Node.Status != "FAILED" {
		t.Errorf("FAILED payments: %+v", edges)
	}

	for _, c := range []struct {
		viewer *auth.Principal
		code   string
	}{
		{nil, gqlerr.Unauthenticated},
		{&auth.Principal{UserID: user, Role: auth.Customer}, gqlerr.Forbidden},
	} {
		r := e.client(c.viewer).Query(t, `{ payments { edges { cursor } } }`, nil, nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != c.code {
			t.Errorf("payments as %v: %+v, want %s", c.viewer, r.Errors, c.code)
		}
	}
	r := admin.Query(t, `{ payments(after: "bogus") { edges { cursor } } }`, nil, nil)
	if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.BadUserInput {
		t.Errorf("bad cursor: %+v", r.Errors)
	}
}

// The payment token is never part of the API.
func TestTokenIsNotInTheSchema(t *testing.T) {
	e := newEnv(t)
	var out struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	e.client(nil).MustQuery(t, `{ __type(name: "Payment") { fields { name } } }`, nil, &out)
	for _, f := range out.Type.Fields {
		if strings.Contains(strings.ToLower(f.Name), "token") {
			t.Errorf("Payment has a field %s", f.Name)
		}
	}
	if len(out.Type.Fields) == 0 {
		t.Error("no Payment type")
	}
}
