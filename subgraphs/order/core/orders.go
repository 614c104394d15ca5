package core

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
)

// Orders places, reads and moves orders. Every change commits together
// with its events in the outbox; who may ask for it is checked by the
// caller (GraphQL access rules) and, per order, by CanSee.
type Orders struct {
	db     *bun.DB
	events outbox.Writer
	log    *slog.Logger
}

// Options configure Orders.
type Options struct {
	Logger *slog.Logger // default slog.Default()
}

// NewOrders returns the orders stored in db.
func NewOrders(db *bun.DB, o Options) *Orders {
	return &Orders{db: db, events: outbox.NewWriter("order", Publishes), log: cmp.Or(o.Logger, slog.Default())}
}

// Place places an order for userID: validated, priced from the local
// catalog, written with its first status and its OrderPlaced event. Bad
// input comes back as user errors with nothing written. With an
// idempotency key the first order placed with it is returned again, even
// when a repeat races the first.
func (s *Orders) Place(ctx context.Context, userID string, in PlaceInput) (*Order, []usererror.UserError, error) {
	in.normalize()
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	if errs := duplicateProducts(in.Lines); errs != nil {
		return nil, errs, nil
	}
	// A repeat is answered before the catalog is consulted: a product
	// archived since the first attempt must not fail the retry.
	if in.IdempotencyKey != nil {
		if o, err := s.byKey(ctx, userID, *in.IdempotencyKey); err != nil || o != nil {
			return o, nil, err
		}
	}
	products, err := s.catalogProducts(ctx, in.Lines)
	if err != nil {
		return nil, nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, err
	}
	at := postgres.Now()
	o := &Order{
		ID: id.String(), UserID: userID, Status: Pending, ShippingAddress: in.ShippingAddress,
		IdempotencyKey: in.IdempotencyKey, CreatedAt: at, UpdatedAt: at,
		History: []*StatusEntry{{OrderID: id.String(), Seq: 1, Status: Pending, At: at}},
	}
	if errs := price(o, in.Lines, products); errs != nil {
		return nil, errs, nil
	}

	repeated := false
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// A concurrent repeat waits here on the unique key until the first
		// commits, then inserts nothing.
		res, err := tx.NewInsert().Model(o).On("CONFLICT ON CONSTRAINT orders_idempotency_key DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			repeated = true
			return err
		}
		if _, err := tx.NewInsert().Model(&o.Lines).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&o.History).Exec(ctx); err != nil {
			return err
		}
		// PENDING is announced by OrderPlaced; OrderStatusChanged follows
		// for each transition after it.
		return s.events.Add(ctx, tx, o.ID, placedEvent(o, in.PaymentToken))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("place order: %w", err)
	}
	if repeated {
		o, err = s.byKey(ctx, userID, *in.IdempotencyKey)
		return o, nil, err
	}
	return o, nil, nil
}

// duplicateProducts refuses a product listed twice: the customer meant one
// line with the sum, or made a mistake; either way they should say which.
func duplicateProducts(lines []LineInput) []usererror.UserError {
	var errs []usererror.UserError
	first := make(map[string]int, len(lines))
	for i, l := range lines {
		if j, ok := first[l.ProductID]; ok {
			errs = append(errs, usererror.New(usererror.Duplicate,
				fmt.Sprintf("product %s is already on line %d: order it once with the total quantity", l.ProductID, j),
				"input", "lines", fmt.Sprint(i), "productId"))
			continue
		}
		first[l.ProductID] = i
	}
	return errs
}

// price snapshots each line's unit price from the catalog and totals the
// order, refusing unknown or archived products and mixed currencies.
func price(o *Order, lines []LineInput, products map[string]*CatalogProduct) []usererror.UserError {
	var errs []usererror.UserError
	var total int64
	for i, l := range lines {
		path := []string{"input", "lines", fmt.Sprint(i), "productId"}
		p := products[l.ProductID]
		switch {
		case p == nil:
			errs = append(errs, usererror.New(usererror.NotFound, "no product with id "+l.ProductID, path...))
			continue
		case !p.Active:
			errs = append(errs, usererror.New(usererror.Invalid, fmt.Sprintf("%s (%s) is no longer for sale", p.Name, l.ProductID), path...))
			continue
		case o.Currency == "":
			o.Currency = p.Currency
		case p.Currency != o.Currency:
			errs = append(errs, usererror.New(MixedCurrencies,
				fmt.Sprintf("%s is priced in %s, the order in %s: place one order per currency", p.Name, p.Currency, o.Currency), path...))
			continue
		}
		amount, ok := mul(p.PriceAmount, int64(l.Quantity))
		if ok {
			total, ok = add(total, amount)
		}
		if !ok {
			return []usererror.UserError{usererror.New(usererror.OutOfRange, "the order's total is too large", "input", "lines")}
		}
		o.Lines = append(o.Lines, &Line{
			OrderID: o.ID, Position: i, ProductID: l.ProductID, Quantity: l.Quantity,
			UnitAmount: p.PriceAmount, LineAmount: amount, Currency: p.Currency, Name: p.Name,
		})
	}
	o.TotalAmount = total
	return errs
}

// mul and add are int64 arithmetic on non-negative amounts that report
// overflow instead of wrapping.
func mul(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || (b != 0 && a > math.MaxInt64/b) {
		return 0, false
	}
	return a * b, true
}

func add(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

func placedEvent(o *Order, paymentToken string) *orderv1.OrderPlaced {
	lines := make([]*orderv1.Line, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = &orderv1.Line{ProductId: l.ProductID, ProductName: l.Name, Quantity: int32(l.Quantity),
			UnitPrice: &commonv1.Money{Amount: l.UnitAmount, Currency: l.Currency}}
	}
	return &orderv1.OrderPlaced{
		OrderId: o.ID, UserId: o.UserID, Lines: lines,
		Total:        &commonv1.Money{Amount: o.TotalAmount, Currency: o.Currency},
		PaymentToken: paymentToken, PlacedAt: timestamppb.New(o.CreatedAt),
	}
}

// withDetails loads an order's lines and history, in order, in one query
// each however many orders are read.
func withDetails(q *bun.SelectQuery) *bun.SelectQuery {
	return q.
		Relation("Lines", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Relation("History", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("seq") })
}

func (s *Orders) byKey(ctx context.Context, userID, key string) (*Order, error) {
	o := new(Order)
	err := withDetails(s.db.NewSelect().Model(o)).Where("user_id = ? AND idempotency_key = ?", userID, key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return o, err
}

// load returns the order with id, or nil when there is none.
func (s *Orders) load(ctx context.Context, id string) (*Order, error) {
	id, ok := uuids.Canonical(id)
	if !ok {
		return nil, nil
	}
	o := new(Order)
	err := withDetails(s.db.NewSelect().Model(o)).Where("?TableAlias.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return o, err
}

// Get returns the order with id if viewer may see it, else nil: to anyone
// else an order does not exist.
func (s *Orders) Get(ctx context.Context, viewer auth.Principal, id string) (*Order, error) {
	o, err := s.load(ctx, id)
	if err != nil || o == nil || !CanSee(viewer, o) {
		return nil, err
	}
	return o, nil
}

// GetMany returns the orders with ids in the same order, nil where one
// does not exist or viewer may not see it: a constant number of queries
// however many ids.
func (s *Orders) GetMany(ctx context.Context, viewer auth.Principal, ids []string) ([]*Order, error) {
	if viewer.Role != auth.Admin && viewer.UserID == "" {
		return make([]*Order, len(ids)), nil
	}
	return uuids.Lookup(ids, func(valid []string) ([]*Order, error) {
		var found []*Order
		q := withDetails(s.db.NewSelect().Model(&found)).Where("?TableAlias.id IN (?)", bun.List(valid))
		if viewer.Role != auth.Admin {
			q.Where("?TableAlias.user_id = ?", viewer.UserID)
		}
		err := q.Scan(ctx)
		return found, err
	}, func(o *Order) string { return o.ID })
}

// List returns a page of orders, newest first. Callers decide who may
// list what (admins: all; customers: Filter.UserID set to themselves).
func (s *Orders) List(ctx context.Context, req page.Request, f Filter) (*page.Page[*Order], error) {
	var found []*Order
	q := req.Keyset(withDetails(s.db.NewSelect().Model(&found)))
	if f.Status != nil {
		q.Where("status = ?", *f.Status)
	}
	if f.UserID != nil {
		id, ok := uuids.Canonical(*f.UserID)
		if !ok {
			return &page.Page[*Order]{}, nil
		}
		q.Where("user_id = ?", id)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	return page.Of(found, req), nil
}

// Cancel cancels an order for its customer or an admin, before it ships.
// An order viewer may not see is NOT_FOUND, exactly like a missing one.
func (s *Orders) Cancel(ctx context.Context, viewer auth.Principal, in OrderIDInput) (*Order, []usererror.UserError, error) {
	r := CustomerCancelled
	return s.command(ctx, viewer, in, Cancelled, &r)
}

// MarkShipped records that a confirmed order left the warehouse (admins).
func (s *Orders) MarkShipped(ctx context.Context, viewer auth.Principal, in OrderIDInput) (*Order, []usererror.UserError, error) {
	return s.command(ctx, viewer, in, Shipped, nil)
}

// MarkDelivered records that a shipped order arrived (admins).
func (s *Orders) MarkDelivered(ctx context.Context, viewer auth.Principal, in OrderIDInput) (*Order, []usererror.UserError, error) {
	return s.command(ctx, viewer, in, Delivered, nil)
}

// command moves an order viewer may see to status to, or says why not.
func (s *Orders) command(ctx context.Context, viewer auth.Principal, in OrderIDInput, to Status, reason *Reason) (*Order, []usererror.UserError, error) {
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	var userErrs []usererror.UserError
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o, err := lock(ctx, tx, in.OrderID)
		if err != nil {
			return err
		}
		if o == nil || !CanSee(viewer, o) {
			userErrs = []usererror.UserError{usererror.New(usererror.NotFound, "no order with id "+in.OrderID, "input", "orderId")}
			return nil
		}
		if !CanTransition(o.Status, to) {
			userErrs = []usererror.UserError{usererror.New(InvalidTransition,
				fmt.Sprintf("the order is %s: it cannot become %s", o.Status, to), "input", "orderId")}
			return nil
		}
		return s.transition(ctx, tx, o, to, reason)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("order %s to %s: %w", in.OrderID, to, err)
	}
	if userErrs != nil {
		return nil, userErrs, nil
	}
	o, err := s.load(ctx, in.OrderID)
	return o, nil, err
}

// lock reads an order FOR UPDATE, so its transitions (and their events)
// happen one at a time and enter the outbox in commit order. It returns
// nil when there is none.
func lock(ctx context.Context, tx bun.Tx, id string) (*Order, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, nil
	}
	o := new(Order)
	err := tx.NewSelect().Model(o).Where("id = ?", id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return o, err
}

// errIllegal is a move the status machine refuses.
var errIllegal = errors.New("illegal order transition")

// transition moves the locked order o to status to: the row, a history
// entry and an OrderStatusChanged event, all in tx. It is the only place
// an order's status changes after it was placed.
func (s *Orders) transition(ctx context.Context, tx bun.Tx, o *Order, to Status, reason *Reason) error {
	if !CanTransition(o.Status, to) {
		return fmt.Errorf("%w: %s to %s", errIllegal, o.Status, to)
	}
	from, at := o.Status, postgres.Now()
	if !at.After(o.UpdatedAt) { // keep history times increasing, even within a microsecond
		at = o.UpdatedAt.Add(time.Microsecond)
	}
	o.Status, o.Reason, o.UpdatedAt = to, reason, at
	if _, err := tx.NewUpdate().Model(o).Column("status", "status_reason", "updated_at").WherePK().Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewRaw(`INSERT INTO order_history (order_id, seq, status, reason, at)
		SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ? FROM order_history WHERE order_id = ?`,
		o.ID, to, reason, at, o.ID).Exec(ctx); err != nil {
		return err
	}
	var why string
	if reason != nil {
		why = string(*reason)
	}
	return s.events.Add(ctx, tx, o.ID, &orderv1.OrderStatusChanged{
		OrderId: o.ID, UserId: o.UserID, OldStatus: from.Proto(), NewStatus: to.Proto(),
		Reason: why, ChangedAt: timestamppb.New(at),
	})
}
