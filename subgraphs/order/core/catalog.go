package core

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/events"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// CatalogProduct is the order service's copy of a product: what it takes
// to price an order without asking the product service.
type CatalogProduct struct {
	bun.BaseModel `bun:"table:catalog_products"`

	ProductID   string    `bun:"product_id,pk,type:uuid"`
	Name        string    `bun:"name"`
	PriceAmount int64     `bun:"price_amount"`
	Currency    string    `bun:"currency"`
	Active      bool      `bun:"active"`
	UpdatedAt   time.Time `bun:"updated_at"` // the product's, from its events
}

// catalogProducts returns the copies of the lines' products by id.
func (s *Orders) catalogProducts(ctx context.Context, lines []LineInput) (map[string]*CatalogProduct, error) {
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	var ps []*CatalogProduct
	if err := s.db.NewSelect().Model(&ps).Where("product_id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]*CatalogProduct, len(ps))
	for _, p := range ps {
		out[p.ProductID] = p
	}
	return out, nil
}

// The product handlers below keep the copy current. One product's events
// arrive in order (same key, same partition), but may be redelivered, or
// replayed from the start of the topic: each applies only if it is newer
// than the copy, by the product's own updated_at, so an old event never
// undoes a newer one.

// OnProductCreated adds a product to the copy.
func (s *Orders) OnProductCreated(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductCreated) error {
	return s.putProduct(ctx, tx, meta, m.GetProduct())
}

// OnProductUpdated replaces a product's copy with its new state.
func (s *Orders) OnProductUpdated(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductUpdated) error {
	return s.putProduct(ctx, tx, meta, m.GetProduct())
}

// OnProductArchived withdraws a product from sale. The product service
// sets updated_at to the archive time, so archived_at orders it against
// the other events. A product never seen is left unknown, which refuses
// it just the same.
func (s *Orders) OnProductArchived(ctx context.Context, tx bun.Tx, meta events.Meta, m *productv1.ProductArchived) error {
	id, err := uuid.Parse(m.GetProductId())
	if err != nil || m.GetArchivedAt() == nil {
		s.log.Warn("ignoring malformed product event", "type", meta.Type, "event_id", meta.ID)
		return nil
	}
	at := m.GetArchivedAt().AsTime()
	_, err = tx.NewUpdate().Model((*CatalogProduct)(nil)).
		Set("active = false").Set("updated_at = ?", at).
		Where("product_id = ? AND updated_at < ?", id.String(), at).Exec(ctx)
	return err
}

func (s *Orders) putProduct(ctx context.Context, tx bun.Tx, meta events.Meta, p *productv1.Product) error {
	id, err := uuid.Parse(p.GetId())
	if err != nil || p.GetPrice() == nil || p.GetPrice().GetAmount() < 0 || len(p.GetPrice().GetCurrency()) != 3 || p.GetUpdatedAt() == nil {
		s.log.Warn("ignoring malformed product event", "type", meta.Type, "event_id", meta.ID)
		return nil
	}
	cp := &CatalogProduct{
		ProductID: id.String(), Name: p.GetName(), PriceAmount: p.GetPrice().GetAmount(),
		Currency: p.GetPrice().GetCurrency(), Active: p.GetActive(), UpdatedAt: p.GetUpdatedAt().AsTime(),
	}
	_, err = tx.NewInsert().Model(cp).
		On("CONFLICT (product_id) DO UPDATE").
		Set("name = EXCLUDED.name, price_amount = EXCLUDED.price_amount, currency = EXCLUDED.currency").
		Set("active = EXCLUDED.active, updated_at = EXCLUDED.updated_at").
		Where("?TableAlias.updated_at < EXCLUDED.updated_at").
		Exec(ctx)
	return err
}
