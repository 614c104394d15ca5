package core_test

import (
	"context"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/usererror"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// Bad input comes back as user errors naming the field at fault, and
// writes neither an order nor an event.
func TestPlaceOrderRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	mug := e.product("Mug", 1250, "EUR")
	cup := e.product("Cup", 300, "EUR")
	dollar := e.product("Dollar mug", 1400, "USD")
	archived := e.product("Old mug", 900, "EUR")
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnProductArchived(ctx, tx, meta("mart.product.v1.ProductArchived"),
			&productv1.ProductArchived{ProductId: archived, ArchivedAt: timestamppb.New(e.clock.Add(time.Second))})
	})
	unknown := uuid.Must(uuid.NewV7()).String()
	many := make([]core.LineInput, 51)
	for i := range many {
		many[i] = line(uuid.Must(uuid.NewV7()).String(), 1)
	}

	type want struct {
		field string // joined by "."
		code  usererror.Code
	}
	for name, c := range map[string]struct {
		in   func() core.PlaceInput
		want []want
	}{
		"quantity 0":   {func() core.PlaceInput { return input(line(mug, 0)) }, []want{{"input.lines.0.quantity", usererror.OutOfRange}}},
		"quantity 101": {func() core.PlaceInput { return input(line(mug, 1), line(cup, 101)) }, []want{{"input.lines.1.quantity", usererror.OutOfRange}}},
		"no lines":     {func() core.PlaceInput { return input() }, []want{{"input.lines", usererror.TooShort}}},
		"51 lines":     {func() core.PlaceInput { return input(many...) }, []want{{"input.lines", usererror.TooLong}}},
		"unknown product": {func() core.PlaceInput { return input(line(mug, 1), line(unknown, 1)) },
			[]want{{"input.lines.1.productId", usererror.NotFound}}},
		"archived product": {func() core.PlaceInput { return input(line(archived, 1)) },
			[]want{{"input.lines.0.productId", usererror.Invalid}}},
		"not a uuid": {func() core.PlaceInput { return input(line("mug", 1)) }, []want{{"input.lines.0.productId", usererror.Invalid}}},
		"mixed currencies": {func() core.PlaceInput { return input(line(mug, 1), line(cup, 1), line(dollar, 1)) },
			[]want{{"input.lines.2.productId", core.MixedCurrencies}}},
		"same product twice": {func() core.PlaceInput { return input(line(mug, 1), line(cup, 1), line(strings.ToUpper(mug), 2)) },
			[]want{{"input.lines.2.productId", usererror.Duplicate}}},
		"empty payment token": {func() core.PlaceInput { in := input(line(mug, 1)); in.PaymentToken = "  "; return in },
			[]want{{"input.paymentToken", usererror.Required}}},
		"bad country": {func() core.PlaceInput { in := input(line(mug, 1)); in.ShippingAddress.Country = "XX"; return in },
			[]want{{"input.shippingAddress.country", usererror.Invalid}}},
		"address incomplete": {func() core.PlaceInput {
			in := input(line(mug, 1))
			in.ShippingAddress.Name, in.ShippingAddress.PostalCode = "", strings.Repeat("9", 21)
			return in
		}, []want{{"input.shippingAddress.name", usererror.Required}, {"input.shippingAddress.postalCode", usererror.TooLong}}},
		"empty idempotency key": {func() core.PlaceInput { in := input(line(mug, 1)); in.IdempotencyKey = ptr(""); return in },
			[]want{{"input.idempotencyKey", usererror.TooShort}}},
	} {
		t.Run(name, func(t *testing.T) {
			o, errs, err := e.orders.Place(context.Background(), alice.UserID, c.in())
			if err != nil || o != nil {
				t.Fatalf("got order %v, err %v", o, err)
			}
			var got []want
			for _, ue := range errs {
				if ue.Message == "" {
					t.Errorf("%v: no message", ue.Field)
				}
				got = append(got, want{strings.Join(ue.Field, "."), ue.Code})
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("user errors %+v, want %+v", errs, c.want)
			}
		})
	}
	for _, table := range []string{"orders", "order_lines", "order_history", "outbox"} {
		if n := e.db.Count(e.t, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%s holds %d rows after refused orders", table, n)
		}
	}
}

// An order keeps the prices it was placed at; its total is the sum of
// quantity times unit price, in the products' currency; OrderPlaced carries
// all of it, with the payment token, and the order starts PENDING.
func TestPlaceOrderSnapshotsPricesAndTotals(t *testing.T) {
	e := newEnv(t)
	mug := e.product("Mug", 1250, "EUR")
	cup := e.product("Cup", 299, "EUR")
	in := input(line(mug, 2), line(cup, 3))
	in.ShippingAddress.Line2 = ptr("  ")
	o := e.place(alice, in)

	if o.Status != core.Pending || o.Total() != (core.Money{Amount: 2*1250 + 3*299, Currency: "EUR"}) {
		t.Fatalf("order: %s %+v", o.Status, o.Total())
	}
	if o.ShippingAddress.Country != "DE" || o.ShippingAddress.Line2 != nil {
		t.Errorf("address not normalized: %+v", o.ShippingAddress)
	}

	// The catalog changes; the order does not.
	e.clock = e.clock.Add(time.Hour)
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnProductUpdated(ctx, tx, meta("mart.product.v1.ProductUpdated"), &productv1.ProductUpdated{Product: &productv1.Product{
			Id: mug, Name: "Mug", Price: &productv1.Money{Amount: 9999, Currency: "EUR"}, Active: true, UpdatedAt: timestamppb.New(e.clock)}})
	})
	stored := e.get(o.ID)
	var got []core.Money
	for _, l := range stored.Lines {
		got = append(got, l.UnitPrice(), l.LineTotal())
	}
	want := []core.Money{{1250, "EUR"}, {2500, "EUR"}, {299, "EUR"}, {897, "EUR"}}
	if !reflect.DeepEqual(got, want) || stored.TotalAmount != 3397 || stored.Lines[0].Product().ID != mug {
		t.Errorf("stored lines %+v total %d", got, stored.TotalAmount)
	}
	if !reflect.DeepEqual(statuses(stored), []string{"PENDING"}) {
		t.Errorf("history %v", statuses(stored))
	}
	if e.place(alice, input(line(mug, 1))).TotalAmount != 9999 {
		t.Error("a new order does not use the new price")
	}

	msgs := e.outbox()
	placed, ok := msgs[0].(*orderv1.OrderPlaced)
	if !ok || len(msgs) != 2 {
		t.Fatalf("outbox %v", msgs)
	}
	if placed.OrderId != o.ID || placed.UserId != alice.UserID || placed.PaymentToken != "tok_visa" ||
		placed.Total.Amount != 3397 || placed.Total.Currency != "EUR" || len(placed.Lines) != 2 ||
		placed.Lines[1].ProductId != cup || placed.Lines[1].Quantity != 3 || placed.Lines[1].UnitPrice.Amount != 299 ||
		!placed.PlacedAt.AsTime().Equal(o.CreatedAt) {
		t.Errorf("OrderPlaced %v", placed)
	}
	if len(e.changes()) != 0 {
		t.Error("PENDING is announced by OrderPlaced, not OrderStatusChanged")
	}
}

// A total that does not fit in int64 is refused, not wrapped.
func TestPlaceOrderRefusesOverflowingTotals(t *testing.T) {
	e := newEnv(t)
	big := e.product("Yacht", math.MaxInt64/60, "EUR")
	_, errs, err := e.orders.Place(context.Background(), alice.UserID, input(line(big, 100)))
	if err != nil || len(errs) != 1 || errs[0].Code != usererror.OutOfRange || strings.Join(errs[0].Field, ".") != "input.lines" {
		t.Fatalf("%v %+v", err, errs)
	}
	other := e.product("Ship", math.MaxInt64/2, "EUR")
	_, errs, _ = e.orders.Place(context.Background(), alice.UserID, input(line(big, 30), line(other, 1), line(e.product("Boat", math.MaxInt64/2, "EUR"), 1)))
	if len(errs) != 1 || errs[0].Code != usererror.OutOfRange {
		t.Fatalf("sum overflow: %+v", errs)
	}
	if n := e.db.Count(e.t, "SELECT count(*) FROM orders"); n != 0 {
		t.Errorf("%d orders", n)
	}
}

// The same idempotency key from the same customer returns the first order;
// from another customer, or without a key, a new order is placed.
func TestIdempotencyKeyReturnsTheFirstOrder(t *testing.T) {
	e := newEnv(t)
	mug := e.product("Mug", 1250, "EUR")
	in := input(line(mug, 1))
	in.IdempotencyKey = ptr("checkout-1")
	first := e.place(alice, in)

	// Even if the product was archived meanwhile, the retry gets the order.
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnProductArchived(ctx, tx, meta("mart.product.v1.ProductArchived"),
			&productv1.ProductArchived{ProductId: mug, ArchivedAt: timestamppb.New(e.clock.Add(time.Minute))})
	})
	again := e.place(alice, in)
	if again.ID != first.ID || len(again.Lines) != 1 || len(again.History) != 1 {
		t.Fatalf("repeat placed %s (%+v), want %s", again.ID, again, first.ID)
	}
	e.clock = e.clock.Add(time.Hour)
	cup := e.product("Cup", 300, "EUR")
	in.Lines = []core.LineInput{line(cup, 1)}
	if o := e.place(bob, in); o.ID == first.ID {
		t.Error("another customer's key returned alice's order")
	}
	in.IdempotencyKey = nil
	a, b := e.place(alice, in), e.place(alice, in)
	if a.ID == b.ID {
		t.Error("orders without a key were merged")
	}
	if n := e.db.Count(e.t, "SELECT count(*) FROM orders"); n != 4 {
		t.Errorf("%d orders, want 4", n)
	}
	if n := len(e.outbox()); n != 4 {
		t.Errorf("%d events, want 4", n)
	}
}

// Concurrent repeats of one key place one order, and all of them get it.
func TestIdempotencyKeyUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	mug := e.product("Mug", 1250, "EUR")
	in := input(line(mug, 1))
	in.IdempotencyKey = ptr("double-click")
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o, errs, err := e.orders.Place(context.Background(), alice.UserID, in)
			if err != nil || errs != nil || o == nil {
				t.Errorf("place: %v %+v", err, errs)
				return
			}
			ids[i] = o.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different orders: %v", ids)
		}
	}
	if c := e.db.Count(e.t, "SELECT count(*) FROM orders"); c != 1 {
		t.Errorf("%d orders", c)
	}
	if c := len(e.outbox()); c != 1 {
		t.Errorf("%d events", c)
	}
}
