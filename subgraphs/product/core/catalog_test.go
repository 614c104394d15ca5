package core_test

import (
	"context"
	"testing"

	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/product/core"
)

func ptr[T any](v T) *T { return &v }

// Each change writes exactly one event with it; a refused change writes
// neither the product nor an event; a change that changes nothing writes
// no event.
func TestChangesAndTheirEventsCommitTogether(t *testing.T) {
	db := pgtest.New(t, "product")
	c := core.NewCatalog(db.DB, core.Options{})
	ctx := context.Background()
	outbox := func() (types []string) {
		if err := db.DB.NewRaw("SELECT type FROM outbox ORDER BY seq").Scan(ctx, &types); err != nil {
			t.Fatal(err)
		}
		return types
	}

	p, errs, err := c.Create(ctx, core.CreateInput{SKU: "cup-1", Name: "Cup", Price: core.Money{Amount: 300, Currency: "usd"}})
	if err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	_, errs, err = c.Create(ctx, core.CreateInput{SKU: "CUP-1", Name: "Other cup", Price: core.Money{Amount: 1, Currency: "USD"}})
	if err != nil || len(errs) != 1 || errs[0].Code != usererror.Duplicate {
		t.Fatalf("duplicate: %v %+v", err, errs)
	}
	if _, errs, _ = c.Update(ctx, core.UpdateInput{ID: p.ID, Name: ptr("Cup")}); errs != nil {
		t.Fatal(errs)
	}
	if _, errs, _ = c.Update(ctx, core.UpdateInput{ID: p.ID, Price: &core.Money{Amount: -5, Currency: "USD"}}); len(errs) != 1 {
		t.Fatalf("negative price accepted: %+v", errs)
	}
	if _, errs, _ = c.Update(ctx, core.UpdateInput{ID: p.ID, Price: &core.Money{Amount: 350, Currency: "USD"}}); errs != nil {
		t.Fatal(errs)
	}
	if _, errs, _ = c.Archive(ctx, core.ArchiveInput{ID: p.ID}); errs != nil {
		t.Fatal(errs)
	}
	if _, errs, _ = c.Archive(ctx, core.ArchiveInput{ID: p.ID}); errs != nil {
		t.Fatal(errs)
	}

	want := []string{"mart.product.v1.ProductCreated", "mart.product.v1.ProductUpdated", "mart.product.v1.ProductArchived"}
	got := outbox()
	if len(got) != len(want) {
		t.Fatalf("outbox holds %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outbox holds %v, want %v", got, want)
		}
	}
	var n int
	if err := db.DB.NewRaw("SELECT count(*) FROM products").Scan(ctx, &n); err != nil || n != 1 {
		t.Fatalf("%d products, want 1 (%v)", n, err)
	}
	stored, _ := c.Get(ctx, p.ID)
	if stored.PriceAmount != 350 || stored.Active || stored.SKU != "CUP-1" {
		t.Errorf("stored: %+v", stored)
	}
}
