package core_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/usererror"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/inventory/core"
)

// ProductCreated creates an empty stock row, once however often it
// arrives; a product not created yet has zero stock, not an error.
func TestProductCreatedCreatesAnEmptyStockRow(t *testing.T) {
	e := newEnv(t)
	id := newID()
	created := &productv1.ProductCreated{Product: &productv1.Product{Id: strings.ToUpper(id), Sku: "MUG-1"}}
	e.mustHandle(created)
	e.adjust(id, 4)
	e.mustHandle(created) // again, under another event id: the units stay
	e.mustHandle(&productv1.ProductCreated{Product: &productv1.Product{Id: "not-a-uuid"}})

	if n := e.db.Count(e.t, `SELECT count(*) FROM stock`); n != 1 {
		t.Errorf("%d stock rows, want 1", n)
	}
	e.wantStock(id, 4, 0)
	s, err := e.inv.Stocks(context.Background(), []string{newID(), "not-a-uuid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range s {
		if s.OnHand != 0 || s.Reserved != 0 || s.Available() != 0 || s.InStock() {
			t.Errorf("unknown product has stock %+v", s)
		}
	}
}

func TestAdjustStock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.product(0)

	m := e.adjust(id, 10)
	if m.Kind != core.Receipt || m.Quantity() != 10 || m.OnHandAfter != 10 || m.ReservedAfter != 0 || *m.Reason != "test" {
		t.Errorf("receipt = %+v", m)
	}
	m = e.adjust(id, -3)
	if m.Kind != core.Adjustment || m.Quantity() != -3 || m.OnHandAfter != 7 {
		t.Errorf("adjustment = %+v", m)
	}
	e.mustHandle(placed(newID(), qty{id, 5}))
	e.wantStock(id, 7, 5)

	for _, c := range []struct {
		name string
		in   core.AdjustInput
		want []usererror.Code
		path string
	}{
		{"below reserved", core.AdjustInput{ProductID: id, Delta: -3, Reason: "broken", IdempotencyKey: newID()}, []usererror.Code{core.InsufficientStock}, "input.delta"},
		{"unknown product", core.AdjustInput{ProductID: newID(), Delta: 1, Reason: "found", IdempotencyKey: newID()}, []usererror.Code{usererror.NotFound}, "input.productId"},
		{"zero delta", core.AdjustInput{ProductID: id, Delta: 0, Reason: "nothing", IdempotencyKey: newID()}, []usererror.Code{usererror.OutOfRange}, "input.delta"},
		{"huge delta", core.AdjustInput{ProductID: id, Delta: 2_000_000, Reason: "lots", IdempotencyKey: newID()}, []usererror.Code{usererror.OutOfRange}, "input.delta"},
		{"no reason", core.AdjustInput{ProductID: id, Delta: 1, Reason: "  ", IdempotencyKey: newID()}, []usererror.Code{usererror.Required}, "input.reason"},
		{"no key", core.AdjustInput{ProductID: id, Delta: 1, Reason: "why"}, []usererror.Code{usererror.Required}, "input.idempotencyKey"},
		{"bad id", core.AdjustInput{ProductID: "42", Delta: 1, Reason: "why", IdempotencyKey: newID()}, []usererror.Code{usererror.Invalid}, "input.productId"},
	} {
		m, errs, err := e.inv.Adjust(ctx, c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []usererror.Code
		for _, ue := range errs {
			got = append(got, ue.Code)
		}
		if m != nil || !slices.Equal(got, c.want) || strings.Join(errs[0].Field, ".") != c.path {
			t.Errorf("%s: movement %v, errors %+v; want %v on %s", c.name, m, errs, c.want, c.path)
		}
	}
	e.wantStock(id, 7, 5)
	// Down to exactly what is reserved is allowed.
	if m := e.adjust(id, -2); m.OnHandAfter != 5 || m.ReservedAfter != 5 {
		t.Errorf("adjust to reserved = %+v", m)
	}
}

// The same idempotency key returns the first result and changes nothing,
// also when the repeats race; reusing it for another change is refused.
func TestAdjustStockIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.product(0)
	in := core.AdjustInput{ProductID: id, Delta: 5, Reason: "delivery 42", IdempotencyKey: "delivery-42"}

	first, errs, err := e.inv.Adjust(ctx, in)
	if err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	e.adjust(id, 1) // another change in between
	again, errs, err := e.inv.Adjust(ctx, in)
	if err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	if again.ID != first.ID || again.OnHandAfter != 5 || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("repeat = %+v, want the first movement %+v", again, first)
	}
	e.wantStock(id, 6, 0)

	other := e.product(0)
	for _, c := range []core.AdjustInput{
		{ProductID: id, Delta: 6, Reason: "delivery 42", IdempotencyKey: "delivery-42"},
		{ProductID: other, Delta: 5, Reason: "delivery 42", IdempotencyKey: "delivery-42"},
	} {
		if _, errs, err := e.inv.Adjust(ctx, c); err != nil || len(errs) != 1 || errs[0].Code != usererror.Duplicate {
			t.Errorf("key reused for %+v: %v %+v", c, err, errs)
		}
	}

	// Racing repeats: for the same product, and across two products.
	var wg sync.WaitGroup
	ids := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			in := core.AdjustInput{ProductID: id, Delta: 3, Reason: "delivery 43", IdempotencyKey: "delivery-43"}
			if i%2 == 1 {
				in.ProductID = other
			}
			m, errs, err := e.inv.Adjust(ctx, in)
			switch {
			case err != nil:
				t.Error(err)
			case m != nil:
				ids <- m.ID
			case len(errs) != 1 || errs[0].Code != usererror.Duplicate:
				t.Errorf("errors %+v", errs)
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Errorf("%d different movements for one key, want 1", len(seen))
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM stock_movements WHERE idempotency_key = 'delivery-43'`); n != 1 {
		t.Errorf("%d movements for one key, want 1", n)
	}
	h1, _ := e.stock(id)
	h2, _ := e.stock(other)
	if h1+h2 != 6+3 {
		t.Errorf("on hand %d + %d, want one delivery of 3 on top of 6", h1, h2)
	}
}

// The database itself refuses stock that breaks on_hand ≥ reserved ≥ 0,
// and movements that move counters the wrong way for their kind.
func TestDatabaseRefusesABrokenInvariant(t *testing.T) {
	e := newEnv(t)
	id := e.product(3)
	e.mustHandle(placed(newID(), qty{id, 2}))

	for _, stmt := range []string{
		`UPDATE stock SET reserved = on_hand + 1 WHERE product_id = ?`,
		`UPDATE stock SET on_hand = 1 WHERE product_id = ?`,
		`UPDATE stock SET reserved = -1, on_hand = 0 WHERE product_id = ?`,
	} {
		_, err := e.db.DB.Exec(stmt, id)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "stock_invariant" {
			t.Errorf("%s: %v, want a stock_invariant check violation", stmt, err)
		}
	}
	_, err := e.db.DB.Exec(`INSERT INTO stock_movements (id, product_id, kind, on_hand_delta, reserved_delta,
		on_hand_after, reserved_after, created_at) VALUES (?, ?, 'RESERVATION', -1, 0, 2, 2, now())`, newID(), id)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.ConstraintName != "stock_movements_kind" {
		t.Errorf("reservation lowering on_hand: %v, want a stock_movements_kind violation", err)
	}
	e.wantStock(id, 3, 2)
}

// Whatever happens to a product, its stock is the sum of its movements
// (checked after every test by env; here over a long random history).
func TestLedgerSumsEqualStock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	products := []string{e.product(10), e.product(3), e.product(0)}
	var orders []string
	for range 150 {
		switch r.IntN(4) {
		case 0:
			_, _, err := e.inv.Adjust(ctx, core.AdjustInput{ProductID: products[r.IntN(3)], Delta: r.IntN(9) - 3,
				Reason: "count", IdempotencyKey: newID()})
			if err != nil {
				t.Fatal(err)
			}
		case 1:
			o := newID()
			orders = append(orders, o)
			e.mustHandle(placed(o, qty{products[r.IntN(3)], int32(r.IntN(3) + 1)}, qty{products[r.IntN(3)], 1}))
		case 2, 3:
			if len(orders) > 0 {
				o := orders[r.IntN(len(orders))]
				if r.IntN(2) == 0 {
					e.mustHandle(confirmed(o))
				} else {
					e.mustHandle(cancelledOrder(o, "CUSTOMER_CANCELLED"))
				}
			}
		}
	}
	if n := e.db.Count(e.t, `SELECT count(DISTINCT kind) FROM stock_movements`); n != 6 {
		t.Errorf("the history used %d kinds of movement, want all 6", n)
	}
	e.checkLedger()
}

func TestMovementsArePagedNewestFirst(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.product(0)
	var want []string
	for i := 1; i <= 5; i++ {
		want = append([]string{e.adjust(id, i).ID}, want...)
	}
	e.adjust(e.product(0), 1) // another product's movement stays out

	var got []string
	req := page.Request{Size: 2}
	for {
		pg, err := e.inv.Movements(ctx, id, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pg.Nodes {
			got = append(got, m.ID)
		}
		if !pg.HasNextPage {
			break
		}
		c, _ := page.Decode(pg.Nodes[len(pg.Nodes)-1].Cursor().Encode())
		req.After = c
	}
	if !slices.Equal(got, want) {
		t.Errorf("movements %v, want %v", got, want)
	}
	if pg, err := e.inv.Movements(ctx, newID(), page.Request{Size: 10}); err != nil || len(pg.Nodes) != 0 {
		t.Errorf("unknown product: %+v %v", pg, err)
	}
}
