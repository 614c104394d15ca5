// Package core is the product service's domain: the catalog's types, the
// rules its inputs must follow, and the commands that change it, each
// writing its event through the outbox in the same transaction.
package core

import (
	"regexp"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/ptr"
	"github.com/onlinemart/mart/internal/usererror"
)

// Money is an amount in minor units of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount" validate:"gte=0,lte=1000000000000"`
	Currency string `json:"currency" validate:"required,iso4217"`
}

// Product is one catalog entry.
type Product struct {
	bun.BaseModel `bun:"table:products"`

	ID          string    `bun:"id,pk,type:uuid"`
	SKU         string    `bun:"sku"`
	Name        string    `bun:"name"`
	Description string    `bun:"description"`
	PriceAmount int64     `bun:"price_amount"`
	Currency    string    `bun:"currency"`
	Category    string    `bun:"category"`
	Active      bool      `bun:"active"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

// Price returns the product's price.
func (p *Product) Price() Money { return Money{Amount: p.PriceAmount, Currency: p.Currency} }

// Cursor is where the product stands in a listing.
func (p *Product) Cursor() page.Cursor { return page.Cursor{Time: p.CreatedAt, ID: p.ID} }

// CreateInput is what createProduct takes.
type CreateInput struct {
	SKU         string  `json:"sku" validate:"required,sku"`
	Name        string  `json:"name" validate:"required,min=2,max=200"`
	Description *string `json:"description" validate:"omitnil,max=5000"`
	Price       Money   `json:"price"`
	Category    *string `json:"category" validate:"omitnil,max=100"`
}

// UpdateInput is what updateProduct takes; nil fields stay as they are.
type UpdateInput struct {
	ID          string  `json:"id" validate:"required,uuid"`
	Name        *string `json:"name" validate:"omitnil,min=2,max=200"`
	Description *string `json:"description" validate:"omitnil,max=5000"`
	Price       *Money  `json:"price" validate:"omitnil"`
	Category    *string `json:"category" validate:"omitnil,max=100"`
}

// ArchiveInput is what archiveProduct takes.
type ArchiveInput struct {
	ID string `json:"id" validate:"required,uuid"`
}

// Filter narrows a product listing; zero fields do not filter.
type Filter struct {
	Search   *string `json:"search" validate:"omitnil,max=200"`
	Category *string `json:"category"`
	MinPrice *int64  `json:"minPrice" validate:"omitnil,gte=0"`
	MaxPrice *int64  `json:"maxPrice" validate:"omitnil,gte=0"`
	Active   *bool   `json:"active"`
}

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$`)

func init() {
	usererror.Register("sku", skuPattern.MatchString,
		"must be 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
}

// normalize trims free text and upper-cases SKUs and currencies, so that
// validation and uniqueness see what will be stored.
func (in *CreateInput) normalize() {
	in.SKU = strings.ToUpper(strings.TrimSpace(in.SKU))
	in.Name = strings.TrimSpace(in.Name)
	ptr.TrimSpace(in.Description)
	ptr.TrimSpace(in.Category)
	in.Price.Currency = strings.ToUpper(strings.TrimSpace(in.Price.Currency))
}

func (in *UpdateInput) normalize() {
	in.ID = strings.TrimSpace(in.ID)
	ptr.TrimSpace(in.Name)
	ptr.TrimSpace(in.Description)
	ptr.TrimSpace(in.Category)
	if in.Price != nil {
		in.Price.Currency = strings.ToUpper(strings.TrimSpace(in.Price.Currency))
	}
}

// IsEntity marks Product as a federation entity for gqlgen.
func (Product) IsEntity() {}
