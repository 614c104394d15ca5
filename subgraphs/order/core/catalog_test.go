package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// The catalog copy follows the product events, applying each only if it is
// newer than what it holds: redelivered and stale events change nothing.
func TestCatalogCopyAppliesOnlyNewerEvents(t *testing.T) {
	e := newEnv(t)
	id := uuid.Must(uuid.NewV7()).String()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	state := func(name string, amount int64, active bool, at time.Time) *productv1.Product {
		return &productv1.Product{Id: id, Name: name, Price: &productv1.Money{Amount: amount, Currency: "EUR"},
			Active: active, CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(at)}
	}
	created := &productv1.ProductCreated{Product: state("Mug", 1000, true, t0)}
	update1 := &productv1.ProductUpdated{Product: state("Blue mug", 1100, true, t0.Add(time.Minute))}
	update2 := &productv1.ProductUpdated{Product: state("Blue mug", 1200, true, t0.Add(2*time.Minute))}
	archived := &productv1.ProductArchived{ProductId: id, ArchivedAt: timestamppb.New(t0.Add(3 * time.Minute))}
	apply := func(msgs ...any) {
		t.Helper()
		for _, m := range msgs {
			e.handle(func(ctx context.Context, tx bun.Tx) error {
				switch m := m.(type) {
				case *productv1.ProductCreated:
					return e.orders.OnProductCreated(ctx, tx, meta("mart.product.v1.ProductCreated"), m)
				case *productv1.ProductUpdated:
					return e.orders.OnProductUpdated(ctx, tx, meta("mart.product.v1.ProductUpdated"), m)
				case *productv1.ProductArchived:
					return e.orders.OnProductArchived(ctx, tx, meta("mart.product.v1.ProductArchived"), m)
				}
				t.Fatalf("unexpected %T", m)
				return nil
			})
		}
	}
	copyOf := func() core.CatalogProduct {
		t.Helper()
		var p core.CatalogProduct
		if err := e.db.DB.NewSelect().Model(&p).Where("product_id = ?", id).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(what string, name string, amount int64, active bool, at time.Time) {
		t.Helper()
		p := copyOf()
		if p.Name != name || p.PriceAmount != amount || p.Currency != "EUR" || p.Active != active || !p.UpdatedAt.Equal(at) {
			t.Errorf("%s: copy is %+v", what, p)
		}
	}

	apply(created, update2)
	check("created, then updated", "Blue mug", 1200, true, t0.Add(2*time.Minute))
	apply(update1, created, update2)
	check("stale and repeated events", "Blue mug", 1200, true, t0.Add(2*time.Minute))
	apply(archived)
	check("archived", "Blue mug", 1200, false, t0.Add(3*time.Minute))
	apply(update2, created, archived)
	check("stale events after archive", "Blue mug", 1200, false, t0.Add(3*time.Minute))
	// An update after the archive (a price change of an archived product)
	// keeps what the product service says about active.
	apply(&productv1.ProductUpdated{Product: state("Blue mug", 1300, false, t0.Add(4*time.Minute))})
	check("update of an archived product", "Blue mug", 1300, false, t0.Add(4*time.Minute))

	// Malformed events and archives of unknown products are dropped.
	apply(&productv1.ProductCreated{Product: &productv1.Product{Id: "nope"}},
		&productv1.ProductCreated{},
		&productv1.ProductUpdated{Product: &productv1.Product{Id: uuid.NewString(), Name: "No price", UpdatedAt: timestamppb.Now()}},
		&productv1.ProductArchived{ProductId: uuid.NewString(), ArchivedAt: timestamppb.Now()},
		&productv1.ProductArchived{ProductId: id})
	if n := e.db.Count(e.t, "SELECT count(*) FROM catalog_products"); n != 1 {
		t.Errorf("%d products in the copy", n)
	}
	check("after malformed events", "Blue mug", 1300, false, t0.Add(4*time.Minute))
}
