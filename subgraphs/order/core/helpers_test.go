package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// env is one test's order database with the orders over it.
type env struct {
	t      *testing.T
	db     *pgtest.Database
	orders *core.Orders
	clock  time.Time // product updated_at of the next catalog event
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t, "order")
	log := slog.New(slog.NewTextHandler(t.Output(), nil)) // shown on failure
	return &env{t: t, db: db, orders: core.NewOrders(db.DB, core.Options{Logger: log}), clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

var (
	alice = auth.Principal{UserID: "0193c1d4-0000-7000-8000-00000000a11c", Role: auth.Customer}
	bob   = auth.Principal{UserID: "0193c1d4-0000-7000-8000-000000000b0b", Role: auth.Customer}
	admin = auth.Principal{UserID: "0193c1d4-0000-7000-8000-0000000000ad", Role: auth.Admin}
)

func meta(typ string) events.Meta { return events.Meta{ID: events.NewID(), Type: typ} }

// handle runs an event handler in a transaction, as the inbox does.
func (e *env) handle(fn func(ctx context.Context, tx bun.Tx) error) {
	e.t.Helper()
	if err := e.db.DB.RunInTx(context.Background(), nil, fn); err != nil {
		e.t.Fatal(err)
	}
}

// product adds a product to the catalog copy, as its ProductCreated would.
func (e *env) product(name string, amount int64, currency string) string {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	e.clock = e.clock.Add(time.Second)
	p := &productv1.Product{Id: id, Sku: "SKU-" + name, Name: name, Price: &productv1.Money{Amount: amount, Currency: currency},
		Active: true, CreatedAt: timestamppb.New(e.clock), UpdatedAt: timestamppb.New(e.clock)}
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnProductCreated(ctx, tx, meta("mart.product.v1.ProductCreated"), &productv1.ProductCreated{Product: p})
	})
	return id
}

func address() core.Address {
	return core.Address{Name: "Alice Doe", Line1: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "de"}
}

func input(lines ...core.LineInput) core.PlaceInput {
	return core.PlaceInput{Lines: lines, ShippingAddress: address(), PaymentToken: "tok_visa"}
}

func line(productID string, quantity int) core.LineInput {
	return core.LineInput{ProductID: productID, Quantity: quantity}
}

// place places an order that must succeed.
func (e *env) place(who auth.Principal, in core.PlaceInput) *core.Order {
	e.t.Helper()
	o, errs, err := e.orders.Place(context.Background(), who.UserID, in)
	if err != nil || errs != nil {
		e.t.Fatalf("place: %v %+v", err, errs)
	}
	return o
}

func (e *env) get(id string) *core.Order {
	e.t.Helper()
	o, err := e.orders.Get(context.Background(), admin, id)
	if err != nil || o == nil {
		e.t.Fatalf("get %s: %v %v", id, o, err)
	}
	return o
}

// outbox returns the events waiting in the outbox, decoded, in order.
func (e *env) outbox() []proto.Message {
	e.t.Helper()
	var rows []struct {
		Type    string
		Payload []byte
	}
	if err := e.db.DB.NewRaw("SELECT type, payload FROM outbox ORDER BY seq").Scan(context.Background(), &rows); err != nil {
		e.t.Fatal(err)
	}
	out := make([]proto.Message, len(rows))
	for i, r := range rows {
		var m proto.Message
		switch r.Type {
		case "mart.order.v1.OrderPlaced":
			m = &orderv1.OrderPlaced{}
		case "mart.order.v1.OrderStatusChanged":
			m = &orderv1.OrderStatusChanged{}
		default:
			e.t.Fatalf("unexpected event type %s", r.Type)
		}
		if err := proto.Unmarshal(r.Payload, m); err != nil {
			e.t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

// changes returns the OrderStatusChanged events in the outbox as
// "OLD>NEW:REASON".
func (e *env) changes() []string {
	e.t.Helper()
	var out []string
	for _, m := range e.outbox() {
		if c, ok := m.(*orderv1.OrderStatusChanged); ok {
			out = append(out, fmt.Sprintf("%s>%s:%s", core.StatusFromProto(c.OldStatus), core.StatusFromProto(c.NewStatus), c.Reason))
		}
	}
	return out
}

// statuses returns an order's history as "STATUS" or "STATUS:REASON".
func statuses(o *core.Order) []string {
	out := make([]string, len(o.History))
	for i, h := range o.History {
		out[i] = string(h.Status)
		if h.Reason != nil {
			out[i] += ":" + string(*h.Reason)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
