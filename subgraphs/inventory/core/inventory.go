package core

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
)

// Inventory reads and changes stock. Who may change it by hand is decided
// at the GraphQL edge; the saga changes it through the event handlers.
type Inventory struct {
	db     *bun.DB
	events outbox.Writer
	log    *slog.Logger
}

// Options configure an Inventory.
type Options struct {
	Logger *slog.Logger // default slog.Default()
}

// NewInventory returns the inventory stored in db.
func NewInventory(db *bun.DB, o Options) *Inventory {
	return &Inventory{db: db, events: outbox.NewWriter("inventory", Publishes), log: cmp.Or(o.Logger, slog.Default())}
}

// Stocks returns the stock of each product of ids, in the same order, with
// one query. A product without a stock row (or an id that is no UUID) has
// zero stock.
func (inv *Inventory) Stocks(ctx context.Context, ids []string) ([]*Stock, error) {
	stocks, err := uuids.Lookup(ids, func(valid []string) ([]*Stock, error) {
		var found []*Stock
		if err := inv.db.NewSelect().Model(&found).Where("product_id IN (?)", bun.List(valid)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("read stock: %w", err)
		}
		return found, nil
	}, func(s *Stock) string { return s.ProductID })
	for i, s := range stocks {
		if s == nil {
			stocks[i] = &Stock{ProductID: ids[i]}
		}
	}
	return stocks, err
}

// Adjust records goods received (delta > 0) or written off (delta < 0).
// A change that would leave fewer units on hand than are reserved is
// refused. Repeating an idempotency key returns the first movement and
// changes nothing.
func (inv *Inventory) Adjust(ctx context.Context, in AdjustInput) (*Movement, []usererror.UserError, error) {
	in.normalize()
	if errs := in.validate(); errs != nil {
		return nil, errs, nil
	}
	var m *Movement
	var userErrs []usererror.UserError
	err := inv.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		s, err := lockStocks(ctx, tx, []string{in.ProductID})
		if err != nil || len(s) == 0 {
			return err
		}
		// Checked under the row lock, so two requests with one key for the
		// same product apply once; for different products the unique
		// constraint decides (below).
		if m, err = movementByKey(ctx, tx, in.IdempotencyKey); err != nil || m != nil {
			return err
		}
		if s[0].OnHand+in.Delta < s[0].Reserved {
			userErrs = insufficient(s[0])
			return nil
		}
		m = &Movement{Kind: Receipt, OnHandDelta: in.Delta, Reason: &in.Reason, IdempotencyKey: &in.IdempotencyKey}
		if in.Delta < 0 {
			m.Kind = Adjustment
		}
		return inv.move(ctx, tx, in.ProductID, m)
	})
	switch {
	case postgres.IsUniqueViolation(err, "stock_movements_idempotency_key"):
		if m, err = movementByKey(ctx, inv.db, in.IdempotencyKey); err != nil {
			return nil, nil, fmt.Errorf("adjust stock: %w", err)
		}
	case postgres.IsCheckViolation(err, "stock_invariant"): // raced past the check above
		return nil, insufficient(Stock{}), nil
	case err != nil:
		return nil, nil, fmt.Errorf("adjust stock: %w", err)
	}
	if userErrs != nil {
		return nil, userErrs, nil
	}
	if m == nil {
		return nil, []usererror.UserError{usererror.New(usererror.NotFound,
			"no stock for product "+in.ProductID, "input", "productId")}, nil
	}
	if m.ProductID != in.ProductID || m.OnHandDelta != in.Delta {
		return nil, []usererror.UserError{usererror.New(usererror.Duplicate,
			"idempotencyKey was already used for another change", "input", "idempotencyKey")}, nil
	}
	return m, nil, nil
}

func insufficient(s Stock) []usererror.UserError {
	msg := "not enough stock: that would leave fewer units on hand than are reserved"
	if s.ProductID != "" {
		msg = fmt.Sprintf("not enough stock: %d on hand, %d reserved", s.OnHand, s.Reserved)
	}
	return []usererror.UserError{usererror.New(InsufficientStock, msg, "input", "delta")}
}

// Movements returns a page of a product's movements, newest first. An
// unknown product has none.
func (inv *Inventory) Movements(ctx context.Context, productID string, req page.Request) (*page.Page[*Movement], error) {
	id, ok := uuids.Canonical(productID)
	if !ok {
		return &page.Page[*Movement]{}, nil
	}
	var ms []*Movement
	if err := req.Keyset(inv.db.NewSelect().Model(&ms).Where("product_id = ?", id)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list movements: %w", err)
	}
	return page.Of(ms, req), nil
}

// move applies m's deltas to the product's stock row, which the caller has
// locked, and records m in the ledger: the two always go together. It
// publishes StockLow when the change takes available stock below the
// product's threshold.
func (inv *Inventory) move(ctx context.Context, tx bun.Tx, productID string, m *Movement) error {
	var after Stock
	// The time is read once the row is locked, and from the database's
	// clock whichever replica writes, so one product's movements sort in
	// the order they happened.
	err := tx.NewRaw(`UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ?, updated_at = now()
		WHERE product_id = ? RETURNING on_hand, reserved, low_stock_threshold, clock_timestamp()`,
		m.OnHandDelta, m.ReservedDelta, productID).
		Scan(ctx, &after.OnHand, &after.Reserved, &after.LowStockThreshold, &m.CreatedAt)
	if err != nil {
		return fmt.Errorf("move stock of %s: %w", productID, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	m.ID, m.ProductID = id.String(), productID
	m.OnHandAfter, m.ReservedAfter = after.OnHand, after.Reserved
	if _, err := tx.NewInsert().Model(m).Exec(ctx); err != nil {
		return fmt.Errorf("record movement: %w", err)
	}
	before := after.Available() - m.OnHandDelta + m.ReservedDelta
	if before >= after.LowStockThreshold && after.Available() < after.LowStockThreshold {
		return inv.events.Add(ctx, tx, productID, &inventoryv1.StockLow{
			ProductId: productID, Available: int64(after.Available()),
			Threshold: int64(after.LowStockThreshold), At: timestamppb.New(m.CreatedAt),
		})
	}
	return nil
}

// lockStocks locks the stock rows of ids in product order and returns
// those that exist. Every transaction that changes several rows takes its
// locks this way, so two of them never wait for each other in a cycle.
func lockStocks(ctx context.Context, tx bun.Tx, ids []string) ([]Stock, error) {
	var ss []Stock
	if len(ids) == 0 {
		return nil, nil
	}
	err := tx.NewSelect().Model(&ss).Where("product_id IN (?)", bun.List(ids)).
		Order("product_id").For("UPDATE").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	return ss, nil
}

func movementByKey(ctx context.Context, db bun.IDB, key string) (*Movement, error) {
	m := new(Movement)
	err := db.NewSelect().Model(m).Where("idempotency_key = ?", key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return m, err
}
