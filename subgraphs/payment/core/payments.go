package core

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/uuids"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
)

// Options tune Payments; zero values take the defaults.
type Options struct {
	// Provider charges and refunds; default a new Sandbox.
	Provider PaymentProvider
	// MaxAttempts is how many provider calls a charge gets before it fails
	// with PROCESSING_ERROR; default 4.
	MaxAttempts int
	// InitialBackoff is the wait after the first failed call, doubling
	// after each next one up to MaxBackoff; defaults 1s and 1m. Refunds
	// keep retrying at MaxBackoff: the money must go back.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// CallTimeout limits one provider call; default 15s.
	CallTimeout time.Duration
	// Jobs tunes the workers (Run): how many provider calls may be in
	// flight and how often idle ones poll.
	Jobs   jobs.Options
	Logger *slog.Logger // default slog.Default()
}

// Payments records each order's payment from the saga's events, and (Run)
// charges and refunds them through the provider.
type Payments struct {
	db       *bun.DB
	provider PaymentProvider
	events   outbox.Writer
	opts     Options
	log      *slog.Logger
}

// NewPayments returns the payments stored in db, charged through
// opts.Provider.
func NewPayments(db *bun.DB, opts Options) *Payments {
	if opts.Provider == nil {
		opts.Provider = NewSandbox()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Jobs.Logger = opts.Logger
	return &Payments{
		db: db, provider: opts.Provider, events: outbox.NewWriter("payment", Publishes), opts: opts,
		log: opts.Logger.With("component", "payments"),
	}
}

// The handlers below run in the inbox's transaction, so an exact
// redelivery never reaches them. They never call the provider: they only
// record what happened and, when a charge or refund becomes due, set
// next_attempt_at for the worker (see Run). Each also tolerates the other
// events arriving before or after it, and a repeat under a new event id:
//
//   - OrderPlaced records amount, currency, owner and token. A repeat
//     changes nothing (the first amount stands). After a cancellation it
//     records the amount for the record but no token: it is never charged.
//   - StockReserved marks the payment reserved. Once placed and reserved,
//     a PENDING payment becomes CHARGING. If OrderPlaced has not arrived
//     yet, the charge waits for it; after a cancellation nothing happens.
//   - OrderStatusChanged to CANCELLED: a payment never sent to the
//     provider becomes CANCELLED (and a later StockReserved or OrderPlaced
//     cannot charge it); a SUCCEEDED one is refunded; one whose charge is
//     in flight is left to the worker, which finishes it with the same
//     idempotency key and refunds it if it went through. A cancellation
//     that comes first creates the payment as CANCELLED. Other statuses
//     are not payment's business.

// OnOrderPlaced records what an order costs and how to charge it.
func (p *Payments) OnOrderPlaced(ctx context.Context, tx bun.Tx, meta events.Meta, m *orderv1.OrderPlaced) error {
	userID, ok := uuids.Canonical(m.GetUserId())
	total := m.GetTotal()
	if !ok || total == nil || total.GetAmount() < 0 || total.GetCurrency() == "" {
		return fmt.Errorf("OrderPlaced %s: malformed user id or total", m.GetOrderId())
	}
	pay, err := p.lockOrCreate(ctx, tx, m.GetOrderId())
	if err != nil || pay.PlacedAt != nil {
		return err
	}
	at := postgres.Now()
	pay.PlacedAt, pay.UserID = &at, &userID
	pay.AmountMinor, pay.Currency = total.GetAmount(), total.GetCurrency()
	if pay.Status == Pending {
		pay.Token = new(m.GetPaymentToken())
		startCharge(pay, meta, at)
	}
	return update(ctx, tx, pay, at)
}

// OnStockReserved starts the charge once the order is also placed.
func (p *Payments) OnStockReserved(ctx context.Context, tx bun.Tx, meta events.Meta, m *inventoryv1.StockReserved) error {
	pay, err := p.lockOrCreate(ctx, tx, m.GetOrderId())
	if err != nil || pay.ReservedAt != nil {
		return err
	}
	at := postgres.Now()
	pay.ReservedAt = &at
	startCharge(pay, meta, at)
	return update(ctx, tx, pay, at)
}

// OnOrderStatusChanged stops or refunds the payment of a cancelled order.
func (p *Payments) OnOrderStatusChanged(ctx context.Context, tx bun.Tx, meta events.Meta, m *orderv1.OrderStatusChanged) error {
	if m.GetNewStatus() != orderv1.Status_STATUS_CANCELLED {
		return nil
	}
	pay, err := p.lockOrCreate(ctx, tx, m.GetOrderId())
	if err != nil || pay.CancelledAt != nil {
		return err
	}
	at := postgres.Now()
	pay.CancelledAt = &at
	if userID, ok := uuids.Canonical(m.GetUserId()); ok && pay.UserID == nil {
		pay.UserID = &userID
	}
	switch {
	case pay.Status == Pending, pay.Status == Charging && pay.ChargeAttempts == 0:
		// Never sent to the provider (the worker's claim counts the attempt
		// under the same row lock), so it can simply stop.
		pay.Status, pay.Token, pay.NextAttemptAt = Cancelled, nil, nil
	case pay.Status == Succeeded:
		pay.NextAttemptAt, pay.Traceparent = &at, meta.Traceparent
	}
	return update(ctx, tx, pay, at)
}

// startCharge makes a payment that is both placed and reserved due for
// charging.
func startCharge(pay *Payment, meta events.Meta, at time.Time) {
	if pay.Status == Pending && pay.PlacedAt != nil && pay.ReservedAt != nil {
		pay.Status, pay.NextAttemptAt, pay.Traceparent = Charging, &at, meta.Traceparent
	}
}

// lockOrCreate returns the payment of an order, locked for the rest of tx,
// creating it PENDING if this is the first event about the order.
func (p *Payments) lockOrCreate(ctx context.Context, tx bun.Tx, orderID string) (*Payment, error) {
	id, ok := uuids.Canonical(orderID)
	if !ok {
		return nil, fmt.Errorf("order id %q is not a UUID", orderID)
	}
	at := postgres.Now()
	_, err := tx.NewInsert().Model(&Payment{
		ID: uuid.Must(uuid.NewV7()).String(), OrderID: id, Provider: p.provider.Name(), Status: Pending,
		CreatedAt: at, UpdatedAt: at,
	}).On("CONFLICT (order_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("create payment: %w", err)
	}
	pay := new(Payment)
	if err := tx.NewSelect().Model(pay).Where("order_id = ?", id).For("UPDATE").Scan(ctx); err != nil {
		return nil, fmt.Errorf("lock payment: %w", err)
	}
	return pay, nil
}

func update(ctx context.Context, tx bun.Tx, pay *Payment, at time.Time) error {
	pay.UpdatedAt = at
	if _, err := tx.NewUpdate().Model(pay).WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update payment: %w", err)
	}
	return nil
}

// ForOrders returns the payments of orderIDs in the same order, nil where
// there is none or viewer may not see it: one query however many ids, and
// none for a caller who may see nothing. A payment shows once its
// OrderPlaced arrived (until then its amount and owner are unknown).
func (p *Payments) ForOrders(ctx context.Context, viewer auth.Principal, orderIDs []string) ([]*Payment, error) {
	viewerID, ok := uuids.Canonical(viewer.UserID)
	if !ok {
		return make([]*Payment, len(orderIDs)), nil
	}
	return uuids.Lookup(orderIDs, func(valid []string) ([]*Payment, error) {
		var found []*Payment
		q := p.db.NewSelect().Model(&found).ExcludeColumn("token").
			Where("order_id IN (?)", bun.List(valid)).Where("placed_at IS NOT NULL")
		if viewer.Role != auth.Admin {
			q.Where("user_id = ?", viewerID)
		}
		if err := q.Scan(ctx); err != nil {
			return nil, fmt.Errorf("payments of orders: %w", err)
		}
		return found, nil
	}, func(pay *Payment) string { return pay.OrderID })
}

// List returns a page of payments, newest first. Who may list is decided
// at the GraphQL edge (admins only).
func (p *Payments) List(ctx context.Context, req page.Request, f Filter) (*page.Page[*Payment], error) {
	var ps []*Payment
	q := req.Keyset(p.db.NewSelect().Model(&ps).ExcludeColumn("token")).Where("placed_at IS NOT NULL")
	if f.Status != nil {
		q.Where("status = ?", *f.Status)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return page.Of(ps, req), nil
}
