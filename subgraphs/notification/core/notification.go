// Package core is the notification service's domain: read models of
// contacts and orders built from other services' events, each user's
// channel preferences, the messages those events trigger (rendered from
// templates, recorded in the event's inbox transaction) and the worker that
// delivers them by email and SMS, retrying with backoff.
package core

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/page"
)

// Channel is how a notification reaches its user.
type Channel string

// Channels.
const (
	Email Channel = "EMAIL"
	SMS   Channel = "SMS"
)

// Category groups notifications a user opts in or out of together.
type Category string

// Categories.
const (
	Account      Category = "ACCOUNT"       // about the account itself, e.g. welcome
	OrderUpdates Category = "ORDER_UPDATES" // an order's progress, payments, refunds
	Marketing    Category = "MARKETING"     // offers; nothing sends these yet
)

// Status of a notification: QUEUED until delivered (SENT) or given up on
// (FAILED).
type Status string

// Statuses.
const (
	Queued Status = "QUEUED"
	Sent   Status = "SENT"
	Failed Status = "FAILED"
)

// Template names what a notification says.
type Template string

// Templates, one per triggering event.
const (
	Welcome        Template = "WELCOME"
	OrderConfirmed Template = "ORDER_CONFIRMED"
	OrderCancelled Template = "ORDER_CANCELLED"
	OrderShipped   Template = "ORDER_SHIPPED"
	OrderDelivered Template = "ORDER_DELIVERED"
	PaymentFailed  Template = "PAYMENT_FAILED"
	RefundIssued   Template = "REFUND_ISSUED"
)

// Notification is one message to one user over one channel.
type Notification struct {
	bun.BaseModel `bun:"table:notifications"`

	ID            string     `bun:"id,pk,type:uuid"`
	EventID       string     `bun:"event_id"`
	UserID        string     `bun:"user_id,type:uuid"`
	OrderID       *string    `bun:"order_id,type:uuid"` // nil when not about an order
	Channel       Channel    `bun:"channel"`
	Category      Category   `bun:"category"`
	Template      Template   `bun:"template"`
	Recipient     string     `bun:"recipient"`
	Subject       string     `bun:"subject"`
	BodyText      string     `bun:"body_text"`
	BodyHTML      string     `bun:"body_html"`
	Status        Status     `bun:"status"`
	Attempts      int        `bun:"attempts"`
	NextAttemptAt *time.Time `bun:"next_attempt_at"`
	LastError     *string    `bun:"last_error"`
	SentAt        *time.Time `bun:"sent_at"`
	ResendOf      *string    `bun:"resend_of,type:uuid"`
	CreatedAt     time.Time  `bun:"created_at"`
	UpdatedAt     time.Time  `bun:"updated_at"`
}

// Cursor is where the notification stands in a listing.
func (n *Notification) Cursor() page.Cursor { return page.Cursor{Time: n.CreatedAt, ID: n.ID} }

// Contact is how to reach a user, as the user service last told.
type Contact struct {
	bun.BaseModel `bun:"table:contacts"`

	UserID    string    `bun:"user_id,pk,type:uuid"`
	Email     string    `bun:"email"`
	Name      string    `bun:"name"`
	Phone     string    `bun:"phone"` // "" when none
	UpdatedAt time.Time `bun:"updated_at"`
}

// Order is what the notification service knows of an order.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	OrderID  string    `bun:"order_id,pk,type:uuid"`
	UserID   string    `bun:"user_id,type:uuid"`
	Lines    []Line    `bun:"lines,type:jsonb"`
	Total    int64     `bun:"total"`
	Currency string    `bun:"currency"`
	PlacedAt time.Time `bun:"placed_at"`
}

// Line is one product of an order, as ordered.
type Line struct {
	ProductName string `json:"product_name"`
	Quantity    int32  `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
