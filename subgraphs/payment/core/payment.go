// Package core is the payment service's domain: one payment per order,
// recorded from the saga's events, charged through a PaymentProvider by a
// background worker, refunded when the order is cancelled, and announced
// through the outbox (payment.events.v1, keyed by order id).
package core

import (
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/page"
)

// Status of a payment.
//
//	PENDING ──(placed and reserved)──► CHARGING ──► SUCCEEDED ──(cancelled)──► REFUNDED
//	   │                                  ├───────► FAILED
//	   └──(cancelled)──► CANCELLED ◄──────┘ (cancelled before the first provider call)
type Status string

// Statuses.
const (
	Pending   Status = "PENDING"   // waiting for OrderPlaced and StockReserved
	Charging  Status = "CHARGING"  // the worker charges it (or retries)
	Succeeded Status = "SUCCEEDED" // charged
	Failed    Status = "FAILED"    // declined, or the provider kept failing
	Refunded  Status = "REFUNDED"  // charged, then returned after a cancellation
	Cancelled Status = "CANCELLED" // the order was cancelled before any charge
)

// Failure codes of PaymentFailed (and of sandbox declines).
const (
	CodeDeclined          = "DECLINED"
	CodeInsufficientFunds = "INSUFFICIENT_FUNDS"
	CodeProcessingError   = "PROCESSING_ERROR"
)

// Money is an amount in minor units of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Payment is the payment of one order.
type Payment struct {
	bun.BaseModel `bun:"table:payments"`

	ID          string  `bun:"id,pk,type:uuid"`
	OrderID     string  `bun:"order_id,type:uuid"`
	UserID      *string `bun:"user_id,type:uuid"`
	AmountMinor int64   `bun:"amount"`
	Currency    string  `bun:"currency"`
	// Token is the payment method, for the charge only: it is not in the
	// GraphQL schema, reads for the API leave it out, and it is cleared
	// once no charge can follow.
	Token          *string    `bun:"token"`
	Provider       string     `bun:"provider"`
	Status         Status     `bun:"status"`
	PlacedAt       *time.Time `bun:"placed_at"`
	ReservedAt     *time.Time `bun:"reserved_at"`
	CancelledAt    *time.Time `bun:"cancelled_at"`
	ChargeAttempts int        `bun:"charge_attempts"`
	RefundAttempts int        `bun:"refund_attempts"`
	NextAttemptAt  *time.Time `bun:"next_attempt_at"`
	ChargeID       *string    `bun:"charge_id"`
	RefundID       *string    `bun:"refund_id"`
	FailureCode    *string    `bun:"failure_code"`
	FailureReason  *string    `bun:"failure_reason"`
	Traceparent    string     `bun:"traceparent"`
	ChargedAt      *time.Time `bun:"charged_at"`
	RefundedAt     *time.Time `bun:"refunded_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

// Amount returns what the order costs.
func (p *Payment) Amount() Money { return Money{Amount: p.AmountMinor, Currency: p.Currency} }

// Cursor is where the payment stands in a listing.
func (p *Payment) Cursor() page.Cursor { return page.Cursor{Time: p.CreatedAt, ID: p.ID} }

// Filter narrows a payment listing; nil fields do not filter.
type Filter struct {
	Status *Status `json:"status"`
}
