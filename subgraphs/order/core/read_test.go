package core_test

import (
	"context"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// An order is its customer's and admins' business only: to anyone else it
// does not exist, alone or in a batch.
func TestOrdersAreVisibleToTheirCustomerAndAdmins(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mug := e.product("Mug", 1250, "EUR")
	a := e.place(alice, input(line(mug, 1)))
	b := e.place(bob, input(line(mug, 2)))

	for _, c := range []struct {
		viewer auth.Principal
		id     string
		see    bool
	}{
		{alice, a.ID, true}, {alice, b.ID, false}, {bob, b.ID, true}, {bob, a.ID, false},
		{admin, a.ID, true}, {admin, b.ID, true}, {auth.Principal{}, a.ID, false},
	} {
		o, err := e.orders.Get(ctx, c.viewer, c.id)
		if err != nil || (o != nil) != c.see {
			t.Errorf("%s sees %s: %v (%v)", c.viewer.UserID, c.id, o != nil, err)
		}
	}

	ids := []string{b.ID, "nope", a.ID, "0193c1d4-0000-7000-8000-000000000404", a.ID}
	for _, c := range []struct {
		viewer auth.Principal
		want   []string
	}{
		{alice, []string{"", "", a.ID, "", a.ID}},
		{admin, []string{b.ID, "", a.ID, "", a.ID}},
		{auth.Principal{}, []string{"", "", "", "", ""}},
	} {
		got, err := e.orders.GetMany(ctx, c.viewer, ids)
		if err != nil || len(got) != len(ids) {
			t.Fatal(err, len(got))
		}
		for i, o := range got {
			id := ""
			if o != nil {
				id = o.ID
				if len(o.Lines) != 1 || len(o.History) != 1 {
					t.Errorf("order %s without its lines or history", id)
				}
			}
			if id != c.want[i] {
				t.Errorf("%s: entity %d = %q, want %q", c.viewer.UserID, i, id, c.want[i])
			}
		}
	}
}

// Listings are newest first, page by page, filtered by customer and status.
func TestListOrders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mug := e.product("Mug", 1250, "EUR")
	var mine []string
	for range 5 {
		mine = append([]string{e.place(alice, input(line(mug, 1))).ID}, mine...)
	}
	e.place(bob, input(line(mug, 1)))
	e.cancel(mine[1])

	var got []string
	req := page.Request{Size: 2}
	for {
		pg, err := e.orders.List(ctx, req, core.Filter{UserID: &alice.UserID})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range pg.Nodes {
			got = append(got, o.ID)
		}
		if !pg.HasNextPage {
			break
		}
		req.After, _ = page.Decode(pg.Nodes[len(pg.Nodes)-1].Cursor().Encode())
	}
	if len(got) != 5 {
		t.Fatalf("alice's orders: %v", got)
	}
	for i := range got {
		if got[i] != mine[i] {
			t.Fatalf("alice's orders %v, want %v", got, mine)
		}
	}
	status := core.Cancelled
	pg, err := e.orders.List(ctx, page.Request{Size: 10}, core.Filter{Status: &status})
	if err != nil || len(pg.Nodes) != 1 || pg.Nodes[0].ID != mine[1] {
		t.Errorf("cancelled orders: %v %v", pg, err)
	}
	all, _ := e.orders.List(ctx, page.Request{Size: 10}, core.Filter{})
	if len(all.Nodes) != 6 {
		t.Errorf("%d orders in all", len(all.Nodes))
	}
}
