package core_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/inbox/inboxtest"
	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	"github.com/onlinemart/mart/subgraphs/payment/core"
)

// env is one test's payment database, sandbox and payments over them.
type env struct {
	t        *testing.T
	db       *pgtest.Database
	sandbox  *core.Sandbox
	payments *core.Payments
}

// fast are options for tests: retries in milliseconds.
func fast(t *testing.T) core.Options {
	return core.Options{
		MaxAttempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		CallTimeout: 5 * time.Second, Jobs: jobs.Options{Poll: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), // shown on failure
	}
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, nil)
}

// newEnvWith wraps the sandbox in wrap, when given, as the provider.
func newEnvWith(t *testing.T, wrap func(*core.Sandbox) core.PaymentProvider) *env {
	db := pgtest.New(t, "payment")
	sb := core.NewSandbox()
	var provider core.PaymentProvider = sb
	if wrap != nil {
		provider = wrap(sb)
	}
	opts := fast(t)
	opts.Provider = provider
	return &env{t: t, db: db, sandbox: sb, payments: core.NewPayments(db.DB, opts)}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// deliver hands msg to its handler in a transaction, as the inbox does
// for an event with a new id.
func (e *env) deliver(msg proto.Message) {
	e.t.Helper()
	var h inbox.Handlers
	e.payments.RegisterHandlers(&h)
	if err := inboxtest.Deliver(e.db.DB, &h, "", msg); err != nil {
		e.t.Fatalf("deliver %s: %v", events.TypeOf(msg), err)
	}
}

func placed(orderID, userID, token string, amount int64) *orderv1.OrderPlaced {
	return &orderv1.OrderPlaced{OrderId: orderID, UserId: userID, PaymentToken: token,
		Total: &commonv1.Money{Amount: amount, Currency: "EUR"}}
}

func reserved(orderID string) *inventoryv1.StockReserved {
	return &inventoryv1.StockReserved{OrderId: orderID}
}

func cancelled(orderID, userID string) *orderv1.OrderStatusChanged {
	return &orderv1.OrderStatusChanged{OrderId: orderID, UserId: userID,
		OldStatus: orderv1.Status_STATUS_PENDING, NewStatus: orderv1.Status_STATUS_CANCELLED, Reason: "CUSTOMER_CANCELLED"}
}

// work makes every provider call that is due now, as the worker would.
func (e *env) work() {
	e.t.Helper()
	for {
		worked, err := e.payments.ProcessNext(context.Background())
		if err != nil {
			e.t.Fatalf("ProcessNext: %v", err)
		}
		if !worked {
			return
		}
	}
}

// payment reads the payment of an order, token included; nil if none.
func (e *env) payment(orderID string) *core.Payment {
	e.t.Helper()
	var ps []core.Payment
	if err := e.db.DB.NewSelect().Model(&ps).Where("order_id = ?", orderID).Scan(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if len(ps) == 0 {
		return nil
	}
	return &ps[0]
}

func (e *env) status(orderID string) core.Status {
	e.t.Helper()
	if p := e.payment(orderID); p != nil {
		return p.Status
	}
	return ""
}

// outbox returns the events waiting in the outbox about an order, oldest
// first.
func (e *env) outbox(orderID string) []proto.Message {
	e.t.Helper()
	var rows []struct {
		Type    string `bun:"type"`
		Payload []byte `bun:"payload"`
	}
	if err := e.db.DB.NewRaw(`SELECT type, payload FROM outbox WHERE key = ? ORDER BY seq`, orderID).
		Scan(context.Background(), &rows); err != nil {
		e.t.Fatal(err)
	}
	msgs := make([]proto.Message, len(rows))
	for i, r := range rows {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(r.Type))
		if err != nil {
			e.t.Fatal(err)
		}
		msgs[i] = mt.New().Interface()
		if err := proto.Unmarshal(r.Payload, msgs[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return msgs
}

// types lists the event types of msgs, short names.
func types(msgs []proto.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.ProtoReflect().Descriptor().Name())
	}
	return out
}

func (e *env) charges() (approved, calls int) { return e.sandbox.Charges() }
