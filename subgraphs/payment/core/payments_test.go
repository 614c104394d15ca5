package core_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/ptr"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	"github.com/onlinemart/mart/subgraphs/payment/core"
	"github.com/onlinemart/mart/testkit/testrun"
)

// An order placed and reserved is charged once, and the sandbox token
// decides the outcome; the token is forgotten either way.
func TestEachSandboxTokenSettlesThePayment(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		token  string
		status core.Status
		code   string
	}{
		{core.TokenVisa, core.Succeeded, ""},
		{core.TokenChargeDeclined, core.Failed, core.CodeDeclined},
		{core.TokenInsufficientFunds, core.Failed, core.CodeInsufficientFunds},
		{"tok_unknown", core.Failed, core.CodeDeclined},
	} {
		order, user := newID(), newID()
		e.deliver(placed(order, user, c.token, 4200))
		e.deliver(reserved(order))
		if got := e.status(order); got != core.Charging {
			t.Fatalf("%s: status %s before the worker ran, want CHARGING", c.token, got)
		}
		e.work()

		p := e.payment(order)
		if p.Status != c.status || ptr.Value(p.FailureCode) != c.code {
			t.Errorf("%s: status %s code %q, want %s %q", c.token, p.Status, ptr.Value(p.FailureCode), c.status, c.code)
		}
		if p.Token != nil || p.NextAttemptAt != nil || p.ChargeAttempts != 1 {
			t.Errorf("%s: token %v, next attempt %v, attempts %d; want no token, nothing due, 1 attempt",
				c.token, p.Token, p.NextAttemptAt, p.ChargeAttempts)
		}
		if ptr.Value(p.UserID) != user || p.Amount() != (core.Money{Amount: 4200, Currency: "EUR"}) || p.Provider != "sandbox" {
			t.Errorf("%s: user %v amount %+v provider %q", c.token, ptr.Value(p.UserID), p.Amount(), p.Provider)
		}
		evs := e.outbox(order)
		if len(evs) != 1 {
			t.Fatalf("%s: events %v, want one", c.token, types(evs))
		}
		switch ev := evs[0].(type) {
		case *paymentv1.PaymentSucceeded:
			if c.status != core.Succeeded || ev.GetPaymentId() != p.ID || ev.GetOrderId() != order ||
				ev.GetAmount().GetAmount() != 4200 || ev.GetAmount().GetCurrency() != "EUR" || p.ChargeID == nil {
				t.Errorf("%s: %v (charge id %v)", c.token, ev, p.ChargeID)
			}
		case *paymentv1.PaymentFailed:
			if c.status != core.Failed || ev.GetCode() != c.code || ev.GetReason() == "" || ev.GetOrderId() != order {
				t.Errorf("%s: %v", c.token, ev)
			}
		}
	}
	if approved, calls := e.charges(); approved != 1 || calls != 4 {
		t.Errorf("sandbox approved %d of %d calls, want 1 of 4", approved, calls)
	}
}

// A provider that keeps failing is retried with backoff, with the same
// idempotency key, then the payment fails with PROCESSING_ERROR.
func TestTransientFailuresRetryThenFailWithProcessingError(t *testing.T) {
	e := newEnv(t)
	testrun.Background(t, e.payments.Run)
	order := newID()
	e.deliver(placed(order, newID(), core.TokenProcessingError, 999))
	e.deliver(reserved(order))
	testrun.WaitFor(t, "the payment to fail", func() bool { return e.status(order) == core.Failed })

	p := e.payment(order)
	if ptr.Value(p.FailureCode) != core.CodeProcessingError || p.ChargeAttempts != 3 || p.Token != nil {
		t.Errorf("code %q after %d attempts (token %v), want PROCESSING_ERROR after 3, no token",
			ptr.Value(p.FailureCode), p.ChargeAttempts, p.Token)
	}
	if _, calls := e.charges(); calls != 3 {
		t.Errorf("%d provider calls, want 3", calls)
	}
	evs := e.outbox(order)
	if len(evs) != 1 || evs[0].(*paymentv1.PaymentFailed).GetCode() != core.CodeProcessingError {
		t.Errorf("events %v, want one PaymentFailed PROCESSING_ERROR", evs)
	}
}

// StockReserved delivered again (a new event id, which the inbox cannot
// recognise) neither charges again nor emits again.
func TestStockReservedTwiceChargesOnce(t *testing.T) {
	e := newEnv(t)
	order := newID()
	e.deliver(placed(order, newID(), core.TokenVisa, 1250))
	e.deliver(reserved(order))
	e.deliver(reserved(order))
	e.work()
	e.deliver(reserved(order))
	e.deliver(placed(order, newID(), core.TokenVisa, 99999)) // a repeat: the first amount stands
	e.work()

	if approved, calls := e.charges(); approved != 1 || calls != 1 {
		t.Errorf("sandbox approved %d of %d calls, want 1 of 1", approved, calls)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM payments WHERE status = 'SUCCEEDED'`); n != 1 {
		t.Errorf("%d SUCCEEDED payments, want 1", n)
	}
	if p := e.payment(order); p.AmountMinor != 1250 {
		t.Errorf("amount %d, want the first OrderPlaced's 1250", p.AmountMinor)
	}
	if evs := e.outbox(order); !slices.Equal(types(evs), []string{"PaymentSucceeded"}) {
		t.Errorf("events %v, want one PaymentSucceeded", types(evs))
	}
}

// Two replicas' workers share the queue without charging anything twice.
func TestConcurrentWorkersChargeEachOrderOnce(t *testing.T) {
	e := newEnv(t)
	opts := fast(t)
	opts.Provider = e.sandbox
	other := core.NewPayments(e.db.DB, opts)
	testrun.Background(t, e.payments.Run)
	testrun.Background(t, other.Run)
	const orders = 30
	for range orders {
		order := newID()
		e.deliver(placed(order, newID(), core.TokenVisa, 100))
		e.deliver(reserved(order))
	}
	testrun.WaitFor(t, "every order to be charged", func() bool {
		return e.db.Count(e.t, `SELECT count(*) FROM payments WHERE status = 'SUCCEEDED'`) == orders
	})
	if approved, calls := e.charges(); approved != orders || calls != orders {
		t.Errorf("sandbox approved %d of %d calls, want %d of %d", approved, calls, orders, orders)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM outbox WHERE type = 'mart.payment.v1.PaymentSucceeded'`); n != orders {
		t.Errorf("%d PaymentSucceeded events, want %d", n, orders)
	}
}

// lostResponse charges through the sandbox but loses the first answer for
// each key, like a timeout after the provider took the money.
type lostResponse struct {
	*core.Sandbox
	mu   sync.Mutex
	seen map[string]bool
}

func (l *lostResponse) Charge(ctx context.Context, req core.ChargeRequest) (core.ChargeResult, error) {
	res, err := l.Sandbox.Charge(ctx, req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen[req.IdempotencyKey] {
		l.seen[req.IdempotencyKey] = true
		return core.ChargeResult{}, errors.New("timeout awaiting response")
	}
	return res, err
}

// A charge whose answer was lost is retried with the same key: the
// provider returns the first result and charges nothing more.
func TestLostResponseIsRetriedWithTheSameKey(t *testing.T) {
	e := newEnvWith(t, func(sb *core.Sandbox) core.PaymentProvider {
		return &lostResponse{Sandbox: sb, seen: map[string]bool{}}
	})
	testrun.Background(t, e.payments.Run)
	order := newID()
	e.deliver(placed(order, newID(), core.TokenVisa, 500))
	e.deliver(reserved(order))
	testrun.WaitFor(t, "the payment to succeed", func() bool { return e.status(order) == core.Succeeded })
	if approved, calls := e.charges(); approved != 1 || calls != 2 {
		t.Errorf("sandbox approved %d of %d calls, want 1 of 2", approved, calls)
	}
	if p := e.payment(order); p.ChargeAttempts != 2 {
		t.Errorf("%d attempts, want 2", p.ChargeAttempts)
	}
}

// A worker that dies after the provider charged but before it recorded the
// result leaves its lease to expire; the next claim calls the provider
// again with the same key and records the first charge.
func TestWorkerCrashAfterChargeDoesNotChargeTwice(t *testing.T) {
	e := newEnv(t)
	order := newID()
	e.deliver(placed(order, newID(), core.TokenVisa, 700))
	e.deliver(reserved(order))
	p := e.payment(order)
	// What the dead worker did: claim (one attempt, leased), charge.
	first, err := e.sandbox.Charge(context.Background(), core.ChargeRequest{
		IdempotencyKey: p.ID, Amount: 700, Currency: "EUR", Token: core.TokenVisa})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.DB.Exec(`UPDATE payments SET charge_attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	e.work()
	if got := e.status(order); got != core.Charging {
		t.Fatalf("status %s while leased, want CHARGING untouched", got)
	}
	if _, err := e.db.DB.Exec(`UPDATE payments SET next_attempt_at = now() - interval '1 second' WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	e.work()

	p = e.payment(order)
	if p.Status != core.Succeeded || ptr.Value(p.ChargeID) != first.ChargeID || p.ChargeAttempts != 2 {
		t.Errorf("status %s charge %q after %d attempts, want SUCCEEDED with the first charge %q after 2",
			p.Status, ptr.Value(p.ChargeID), p.ChargeAttempts, first.ChargeID)
	}
	if approved, _ := e.charges(); approved != 1 {
		t.Errorf("sandbox approved %d charges, want 1", approved)
	}
}

// A cancellation after a successful charge refunds it once, however often
// it is delivered.
func TestCancelAfterSuccessRefundsOnce(t *testing.T) {
	e := newEnv(t)
	order, user := newID(), newID()
	e.deliver(placed(order, user, core.TokenVisa, 3000))
	e.deliver(reserved(order))
	e.work()
	e.deliver(cancelled(order, user))
	e.deliver(cancelled(order, user))
	e.work()
	e.deliver(cancelled(order, user))
	e.work()

	p := e.payment(order)
	if p.Status != core.Refunded || p.RefundedAt == nil || p.RefundID == nil || p.RefundAttempts != 1 {
		t.Errorf("status %s refunded at %v after %d attempts, want REFUNDED once", p.Status, p.RefundedAt, p.RefundAttempts)
	}
	if n := e.sandbox.Refunds(); n != 1 {
		t.Errorf("%d refunds, want 1", n)
	}
	evs := e.outbox(order)
	if !slices.Equal(types(evs), []string{"PaymentSucceeded", "PaymentRefunded"}) {
		t.Fatalf("events %v, want PaymentSucceeded then PaymentRefunded", types(evs))
	}
	if r := evs[1].(*paymentv1.PaymentRefunded); r.GetAmount().GetAmount() != 3000 || r.GetPaymentId() != p.ID {
		t.Errorf("refund event %v", r)
	}
}

// A cancellation that arrives before the charge could start means the
// order is never charged, whatever arrives after it.
func TestCancelBeforeChargeNeverCharges(t *testing.T) {
	for _, c := range []struct {
		name  string
		order func(e *env, order, user string)
	}{
		{"between OrderPlaced and StockReserved", func(e *env, order, user string) {
			e.deliver(placed(order, user, core.TokenVisa, 100))
			e.deliver(cancelled(order, user))
			e.deliver(reserved(order))
		}},
		{"before OrderPlaced", func(e *env, order, user string) {
			e.deliver(cancelled(order, user))
			e.deliver(reserved(order))
			e.deliver(placed(order, user, core.TokenVisa, 100))
		}},
		{"after both, before the worker", func(e *env, order, user string) {
			e.deliver(placed(order, user, core.TokenVisa, 100))
			e.deliver(reserved(order))
			e.deliver(cancelled(order, user))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			order, user := newID(), newID()
			c.order(e, order, user)
			e.work()
			p := e.payment(order)
			if p.Status != core.Cancelled || p.Token != nil || p.NextAttemptAt != nil {
				t.Errorf("status %s token %v next attempt %v, want CANCELLED, no token, nothing due", p.Status, p.Token, p.NextAttemptAt)
			}
			if ptr.Value(p.UserID) != user || p.AmountMinor != 100 {
				t.Errorf("user %v amount %d, want the order's", ptr.Value(p.UserID), p.AmountMinor)
			}
			if _, calls := e.charges(); calls != 0 {
				t.Errorf("%d provider calls, want none", calls)
			}
			if evs := e.outbox(order); len(evs) != 0 {
				t.Errorf("events %v, want none", types(evs))
			}
		})
	}
}

// StockReserved may overtake OrderPlaced (they come on different topics):
// the charge waits for the order's amount and token.
func TestStockReservedBeforeOrderPlaced(t *testing.T) {
	e := newEnv(t)
	order := newID()
	e.deliver(reserved(order))
	e.work()
	if got := e.status(order); got != core.Pending {
		t.Fatalf("status %s without OrderPlaced, want PENDING", got)
	}
	e.deliver(placed(order, newID(), core.TokenVisa, 100))
	e.work()
	if got := e.status(order); got != core.Succeeded {
		t.Errorf("status %s, want SUCCEEDED", got)
	}
	// Other status changes are not payment's business.
	other := newID()
	e.deliver(&orderv1.OrderStatusChanged{OrderId: other, NewStatus: orderv1.Status_STATUS_CONFIRMED})
	if p := e.payment(other); p != nil {
		t.Errorf("a CONFIRMED order got a payment: %+v", p)
	}
}

// blocking holds every charge until released, to cancel mid-call.
type blocking struct {
	*core.Sandbox
	entered, release chan struct{}
}

func (b *blocking) Charge(ctx context.Context, req core.ChargeRequest) (core.ChargeResult, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Sandbox.Charge(ctx, req)
}

// A cancellation while the provider call is in flight does not stop the
// charge halfway: it goes through, is recorded, and is then refunded.
func TestCancelDuringChargeRefundsAfterIt(t *testing.T) {
	b := &blocking{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnvWith(t, func(sb *core.Sandbox) core.PaymentProvider { b.Sandbox = sb; return b })
	testrun.Background(t, e.payments.Run)
	order, user := newID(), newID()
	e.deliver(placed(order, user, core.TokenVisa, 800))
	e.deliver(reserved(order))
	<-b.entered
	e.deliver(cancelled(order, user)) // the row is not locked during the call
	if got := e.status(order); got != core.Charging {
		t.Errorf("status %s mid-call, want CHARGING", got)
	}
	close(b.release)
	testrun.WaitFor(t, "the refund", func() bool { return e.status(order) == core.Refunded })
	if approved, calls := e.charges(); approved != 1 || calls != 1 || e.sandbox.Refunds() != 1 {
		t.Errorf("approved %d of %d calls, %d refunds; want 1 of 1, 1", approved, calls, e.sandbox.Refunds())
	}
	if evs := e.outbox(order); !slices.Equal(types(evs), []string{"PaymentSucceeded", "PaymentRefunded"}) {
		t.Errorf("events %v, want PaymentSucceeded then PaymentRefunded", types(evs))
	}
}

// An OrderPlaced the service cannot use fails (to be retried, then
// dead-lettered by the inbox) and records nothing.
func TestMalformedOrderPlacedIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, m := range []*orderv1.OrderPlaced{
		{OrderId: newID(), UserId: "nobody", Total: placed("", "", "", 1).GetTotal()},
		{OrderId: newID(), UserId: newID()},
		{OrderId: "not-a-uuid", UserId: newID(), Total: placed("", "", "", 1).GetTotal()},
	} {
		err := e.db.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			return e.payments.OnOrderPlaced(ctx, tx, events.Meta{}, m)
		})
		if err == nil {
			t.Errorf("%v: accepted", m)
		}
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM payments`); n != 0 {
		t.Errorf("%d payments recorded, want none", n)
	}
}
