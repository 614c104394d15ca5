// Package core is the order service's domain: orders and their lines, the
// status machine every change goes through, the local copy of the catalog
// that prices new orders, and the saga steps taken on inventory and payment
// events. Every change commits with its event through the outbox.
package core

import (
	"slices"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// Error codes of the order service, next to the shared ones.
const (
	MixedCurrencies   usererror.Code = "MIXED_CURRENCIES"
	InvalidTransition usererror.Code = "INVALID_TRANSITION"
)

// Limits of an order.
const (
	MaxLines    = 50
	MaxQuantity = 100
)

// Money is an amount in minor units of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Address is where an order goes. It is also the GraphQL AddressInput,
// hence the validation tags.
type Address struct {
	Name       string  `json:"name" bun:"name" validate:"required,max=200"`
	Line1      string  `json:"line1" bun:"line1" validate:"required,max=200"`
	Line2      *string `json:"line2" bun:"line2" validate:"omitnil,max=200"`
	City       string  `json:"city" bun:"city" validate:"required,max=100"`
	PostalCode string  `json:"postalCode" bun:"postal_code" validate:"required,max=20"`
	Country    string  `json:"country" bun:"country" validate:"required,iso_country"`
}

// Order is a customer's order.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	ID              string    `bun:"id,pk,type:uuid"`
	UserID          string    `bun:"user_id,type:uuid"`
	Status          Status    `bun:"status"`
	Reason          *Reason   `bun:"status_reason"` // why it was cancelled
	TotalAmount     int64     `bun:"total_amount"`
	Currency        string    `bun:"currency"`
	ShippingAddress Address   `bun:"embed:ship_"`
	IdempotencyKey  *string   `bun:"idempotency_key"`
	CreatedAt       time.Time `bun:"created_at"`
	UpdatedAt       time.Time `bun:"updated_at"`

	Lines   []*Line        `bun:"rel:has-many,join:id=order_id"`
	History []*StatusEntry `bun:"rel:has-many,join:id=order_id"`
}

// Total returns what the order costs.
func (o *Order) Total() Money { return Money{Amount: o.TotalAmount, Currency: o.Currency} }

// IsEntity marks Order as a federation entity for gqlgen.
func (Order) IsEntity() {}

// Cursor is where the order stands in a listing.
func (o *Order) Cursor() page.Cursor { return page.Cursor{Time: o.CreatedAt, ID: o.ID} }

// Line is one product of an order, priced when the order was placed.
type Line struct {
	bun.BaseModel `bun:"table:order_lines"`

	OrderID    string `bun:"order_id,pk,type:uuid"`
	Position   int    `bun:"position,pk"`
	ProductID  string `bun:"product_id,type:uuid"`
	Name       string `bun:"product_name"` // snapshot, like the price
	Quantity   int    `bun:"quantity"`
	UnitAmount int64  `bun:"unit_amount"`
	LineAmount int64  `bun:"line_amount"`
	Currency   string `bun:"currency"`
}

// Product returns a reference to the line's product, which the router
// resolves in full from the product subgraph.
func (l *Line) Product() ProductRef { return ProductRef{ID: l.ProductID} }

// UnitPrice is the product's price when the order was placed.
func (l *Line) UnitPrice() Money { return Money{Amount: l.UnitAmount, Currency: l.Currency} }

// LineTotal is the unit price times the quantity.
func (l *Line) LineTotal() Money { return Money{Amount: l.LineAmount, Currency: l.Currency} }

// ProductRef is a product known only by id.
type ProductRef struct {
	ID string
}

// IsEntity marks ProductRef as a federation entity for gqlgen.
func (ProductRef) IsEntity() {}

// StatusEntry is one status in an order's history.
type StatusEntry struct {
	bun.BaseModel `bun:"table:order_history"`

	OrderID string    `bun:"order_id,pk,type:uuid"`
	Seq     int       `bun:"seq,pk"` // 1 is PENDING, then one per transition
	Status  Status    `bun:"status"`
	Reason  *Reason   `bun:"reason"`
	At      time.Time `bun:"at"`
}

// PlaceInput is what placeOrder takes.
type PlaceInput struct {
	Lines           []LineInput `json:"lines" validate:"min=1,max=50,dive"`
	ShippingAddress Address     `json:"shippingAddress"`
	PaymentToken    string      `json:"paymentToken" validate:"required,max=512"`
	IdempotencyKey  *string     `json:"idempotencyKey" validate:"omitnil,min=1,max=200"`
}

// LineInput is one line of placeOrder.
type LineInput struct {
	ProductID string `json:"productId" validate:"required,uuid"`
	Quantity  int    `json:"quantity" validate:"min=1,max=100"`
}

// OrderIDInput names an order: cancelOrder, markShipped, markDelivered.
type OrderIDInput struct {
	OrderID string `json:"orderId" validate:"required,uuid"`
}

// Filter narrows an order listing; nil fields do not filter.
type Filter struct {
	Status *Status `json:"status"`
	UserID *string `json:"-"`
}

// CanSee reports whether viewer may see o: its customer and admins only.
func CanSee(viewer auth.Principal, o *Order) bool {
	return viewer.Role == auth.Admin || (viewer.UserID != "" && viewer.UserID == o.UserID)
}

// countries checks ISO 3166-1 alpha-2 codes with validator's own table.
var countries = validator.New()

func init() {
	usererror.Register("iso_country", func(s string) bool { return countries.Var(s, "iso3166_1_alpha2") == nil },
		"must be an ISO 3166-1 alpha-2 country code such as DE")
}

// normalize trims free text, upper-cases the country and spells product
// ids canonically, so that validation, duplicates and lookups see what
// will be stored. It copies what it changes: the caller's input is theirs.
func (in *PlaceInput) normalize() {
	in.Lines = slices.Clone(in.Lines)
	for i := range in.Lines {
		l := &in.Lines[i]
		l.ProductID, _ = uuids.Canonical(strings.TrimSpace(l.ProductID))
	}
	a := &in.ShippingAddress
	a.Name, a.Line1 = strings.TrimSpace(a.Name), strings.TrimSpace(a.Line1)
	a.City, a.PostalCode = strings.TrimSpace(a.City), strings.TrimSpace(a.PostalCode)
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	if a.Line2 != nil {
		if line2 := strings.TrimSpace(*a.Line2); line2 != "" {
			a.Line2 = &line2
		} else {
			a.Line2 = nil
		}
	}
	in.PaymentToken = strings.TrimSpace(in.PaymentToken)
	if in.IdempotencyKey != nil {
		key := strings.TrimSpace(*in.IdempotencyKey)
		in.IdempotencyKey = &key
	}
}
