package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/ptr"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// Catalog reads and changes products. Every change commits together with
// its event in the outbox. Who may change it is decided at the GraphQL edge
// (graph.Access).
type Catalog struct {
	db     *bun.DB
	events outbox.Writer
}

// Options configure a Catalog. There are none yet: the parameter gives
// the constructor the shape of every service's store.
type Options struct{}

// NewCatalog returns the catalog stored in db.
func NewCatalog(db *bun.DB, _ Options) *Catalog {
	return &Catalog{db: db, events: outbox.NewWriter("product", Publishes)}
}

// Get returns the product with id, or nil when there is none.
func (c *Catalog) Get(ctx context.Context, id string) (*Product, error) {
	id, ok := uuids.Canonical(id)
	if !ok {
		return nil, nil
	}
	p := new(Product)
	err := c.db.NewSelect().Model(p).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// GetMany returns the products with ids in the same order, nil where a
// product does not exist: one query however many ids.
func (c *Catalog) GetMany(ctx context.Context, ids []string) ([]*Product, error) {
	return uuids.Lookup(ids, func(valid []string) ([]*Product, error) {
		var found []*Product
		err := c.db.NewSelect().Model(&found).Where("id IN (?)", bun.List(valid)).Scan(ctx)
		return found, err
	}, func(p *Product) string { return p.ID })
}

// List returns a page of products, newest first. A filter that breaks its
// rules is a BAD_USER_INPUT error.
func (c *Catalog) List(ctx context.Context, req page.Request, f Filter) (*page.Page[*Product], error) {
	if errs := usererror.Validate("filter", f); errs != nil {
		return nil, usererror.AsError(errs)
	}
	var ps []*Product
	q := req.Keyset(c.db.NewSelect().Model(&ps))
	if f.Search != nil && *f.Search != "" {
		q.Where("search @@ websearch_to_tsquery('english', ?)", *f.Search)
	}
	if f.Category != nil {
		q.Where("category = ?", *f.Category)
	}
	if f.MinPrice != nil {
		q.Where("price_amount >= ?", *f.MinPrice)
	}
	if f.MaxPrice != nil {
		q.Where("price_amount <= ?", *f.MaxPrice)
	}
	if f.Active != nil {
		q.Where("active = ?", *f.Active)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	return page.Of(ps, req), nil
}

// Create adds a product. Bad input or a taken SKU comes back as user
// errors with nothing written.
func (c *Catalog) Create(ctx context.Context, in CreateInput) (*Product, []usererror.UserError, error) {
	in.normalize()
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, err
	}
	now := postgres.Now()
	p := &Product{
		ID: id.String(), SKU: in.SKU, Name: in.Name, Description: ptr.Value(in.Description),
		PriceAmount: in.Price.Amount, Currency: in.Price.Currency, Category: ptr.Value(in.Category),
		Active: true, CreatedAt: now, UpdatedAt: now,
	}
	err = c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(p).Exec(ctx); err != nil {
			return err
		}
		return c.events.Add(ctx, tx, p.ID, &productv1.ProductCreated{Product: toEvent(p)})
	})
	if postgres.IsUniqueViolation(err, "products_sku_key") {
		return nil, []usererror.UserError{usererror.New(usererror.Duplicate,
			fmt.Sprintf("sku %s is already used by another product", in.SKU), "input", "sku")}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create product: %w", err)
	}
	return p, nil, nil
}

// Update changes the given fields of a product. No event is written when
// nothing changed.
func (c *Catalog) Update(ctx context.Context, in UpdateInput) (*Product, []usererror.UserError, error) {
	in.normalize()
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	var p *Product
	var userErrs []usererror.UserError
	err := c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if p, err = lockProduct(ctx, tx, in.ID); err != nil || p == nil {
			return err
		}
		before := *p
		if in.Name != nil {
			p.Name = *in.Name
		}
		if in.Description != nil {
			p.Description = *in.Description
		}
		if in.Category != nil {
			p.Category = *in.Category
		}
		if in.Price != nil {
			p.PriceAmount, p.Currency = in.Price.Amount, in.Price.Currency
		}
		if *p == before {
			return nil
		}
		p.UpdatedAt = postgres.Now()
		if _, err := tx.NewUpdate().Model(p).WherePK().Exec(ctx); err != nil {
			return err
		}
		return c.events.Add(ctx, tx, p.ID, &productv1.ProductUpdated{Product: toEvent(p)})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("update product: %w", err)
	}
	if p == nil {
		userErrs = notFound(in.ID)
	}
	return p, userErrs, nil
}

// Archive withdraws a product from sale; archiving an archived product
// changes nothing.
func (c *Catalog) Archive(ctx context.Context, in ArchiveInput) (*Product, []usererror.UserError, error) {
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	var p *Product
	err := c.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if p, err = lockProduct(ctx, tx, in.ID); err != nil || p == nil || !p.Active {
			return err
		}
		p.Active = false
		p.UpdatedAt = postgres.Now()
		if _, err := tx.NewUpdate().Model(p).Column("active", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return c.events.Add(ctx, tx, p.ID, &productv1.ProductArchived{ProductId: p.ID, ArchivedAt: timestamppb.New(p.UpdatedAt)})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("archive product: %w", err)
	}
	if p == nil {
		return nil, notFound(in.ID), nil
	}
	return p, nil, nil
}

// lockProduct reads a product FOR UPDATE, so its events enter the outbox
// in the order its changes commit. It returns nil when there is none.
func lockProduct(ctx context.Context, tx bun.Tx, id string) (*Product, error) {
	p := new(Product)
	err := tx.NewSelect().Model(p).Where("id = ?", id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

func notFound(id string) []usererror.UserError {
	return []usererror.UserError{usererror.New(usererror.NotFound, "no product with id "+id, "input", "id")}
}

func toEvent(p *Product) *productv1.Product {
	return &productv1.Product{
		Id: p.ID, Sku: p.SKU, Name: p.Name, Description: p.Description,
		Price:    &productv1.Money{Amount: p.PriceAmount, Currency: p.Currency},
		Category: p.Category, Active: p.Active,
		CreatedAt: timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
}
