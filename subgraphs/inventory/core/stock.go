// Package core is the inventory service's domain: each product's stock, the
// ledger of movements that explains it, and the order saga's reservations.
// Every change of a stock row writes its movement in the same transaction,
// and the database refuses any state where on_hand < reserved or
// reserved < 0.
package core

import (
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// InsufficientStock is the user error code of a change that would leave
// fewer units on hand than are reserved.
const InsufficientStock usererror.Code = "INSUFFICIENT_STOCK"

// Stock is a product's stock row.
type Stock struct {
	bun.BaseModel `bun:"table:stock"`

	ProductID         string    `bun:"product_id,pk,type:uuid"`
	OnHand            int       `bun:"on_hand"`
	Reserved          int       `bun:"reserved"`
	LowStockThreshold int       `bun:"low_stock_threshold"`
	CreatedAt         time.Time `bun:"created_at,nullzero,default:now()"`
	UpdatedAt         time.Time `bun:"updated_at,nullzero,default:now()"`
}

// Available is what can still be reserved.
func (s Stock) Available() int { return s.OnHand - s.Reserved }

// InStock reports whether at least one unit is available.
func (s Stock) InStock() bool { return s.Available() > 0 }

// Kind is what a movement records.
type Kind string

// Movement kinds; the database checks which way each moves the counters.
const (
	Receipt     Kind = "RECEIPT"     // on_hand up: goods received
	Adjustment  Kind = "ADJUSTMENT"  // on_hand down: written off
	Reservation Kind = "RESERVATION" // reserved up: held for an order
	Release     Kind = "RELEASE"     // reserved down: an order let go
	Commit      Kind = "COMMIT"      // both down: a confirmed order took its units
	Restock     Kind = "RESTOCK"     // on_hand up: a confirmed order was cancelled
)

// Movement is one entry of the stock ledger.
type Movement struct {
	bun.BaseModel `bun:"table:stock_movements"`

	ID             string    `bun:"id,pk,type:uuid"`
	ProductID      string    `bun:"product_id,type:uuid"`
	Kind           Kind      `bun:"kind"`
	OnHandDelta    int       `bun:"on_hand_delta"`
	ReservedDelta  int       `bun:"reserved_delta"`
	OnHandAfter    int       `bun:"on_hand_after"`
	ReservedAfter  int       `bun:"reserved_after"`
	OrderID        *string   `bun:"order_id,type:uuid"`
	Reason         *string   `bun:"reason"`
	IdempotencyKey *string   `bun:"idempotency_key"`
	CreatedAt      time.Time `bun:"created_at"`
}

// Cursor is where the movement stands in a listing.
func (m *Movement) Cursor() page.Cursor { return page.Cursor{Time: m.CreatedAt, ID: m.ID} }

// Quantity is the movement's signed effect on the counter its kind is
// about: reserved for reservations and releases, on_hand otherwise.
func (m *Movement) Quantity() int {
	if m.OnHandDelta != 0 {
		return m.OnHandDelta
	}
	return m.ReservedDelta
}

// StockAfter is the product's stock right after the movement.
func (m *Movement) StockAfter() *Stock {
	return &Stock{ProductID: m.ProductID, OnHand: m.OnHandAfter, Reserved: m.ReservedAfter}
}

// AdjustInput is what adjustStock takes.
type AdjustInput struct {
	ProductID      string `json:"productId" validate:"required,uuid"`
	Delta          int    `json:"delta" validate:"gte=-1000000,lte=1000000"`
	Reason         string `json:"reason" validate:"required,max=500"`
	IdempotencyKey string `json:"idempotencyKey" validate:"required,max=200"`
}

func (in *AdjustInput) normalize() {
	in.ProductID, _ = uuids.Canonical(strings.TrimSpace(in.ProductID))
	in.Reason = strings.TrimSpace(in.Reason)
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
}

func (in AdjustInput) validate() []usererror.UserError {
	errs := usererror.Validate("input", in)
	if in.Delta == 0 {
		errs = append(errs, usererror.New(usererror.OutOfRange, "delta must not be 0", "input", "delta"))
	}
	return errs
}

// state is how far the saga got with an order, or with one of its lines.
type state string

const (
	reserved  state = "RESERVED"  // units held
	failed    state = "FAILED"    // not enough stock: nothing held
	committed state = "COMMITTED" // confirmed: units left the stock
	released  state = "RELEASED"  // cancelled while held
	restocked state = "RESTOCKED" // cancelled after confirmation: units back
	cancelled state = "CANCELLED" // cancelled before OrderPlaced arrived
)

// reservationLine is one product held by an order.
type reservationLine struct {
	bun.BaseModel `bun:"table:reservations"`

	OrderID   string    `bun:"order_id,pk,type:uuid"`
	ProductID string    `bun:"product_id,pk,type:uuid"`
	Quantity  int       `bun:"quantity"`
	State     state     `bun:"state"`
	CreatedAt time.Time `bun:"created_at,nullzero,default:now()"`
	UpdatedAt time.Time `bun:"updated_at,nullzero,default:now()"`
}
