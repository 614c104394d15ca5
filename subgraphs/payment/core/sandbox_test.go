package core_test

import (
	"context"
	"errors"
	"testing"

	"github.com/onlinemart/mart/subgraphs/payment/core"
)

// Each test token has its documented outcome, and a repeated idempotency
// key returns the first result without charging again.
func TestSandboxOutcomesAndIdempotency(t *testing.T) {
	ctx := context.Background()
	sb := core.NewSandbox()
	for _, c := range []struct {
		token    string
		approved bool
		code     string
	}{
		{core.TokenVisa, true, ""},
		{core.TokenChargeDeclined, false, core.CodeDeclined},
		{core.TokenInsufficientFunds, false, core.CodeInsufficientFunds},
		{"tok_madeUp", false, core.CodeDeclined},
		{"", false, core.CodeDeclined},
	} {
		req := core.ChargeRequest{IdempotencyKey: "key-" + c.token, Amount: 1250, Currency: "EUR", Token: c.token}
		first, err := sb.Charge(ctx, req)
		if err != nil {
			t.Fatalf("%q: %v", c.token, err)
		}
		if first.Approved != c.approved || first.DeclineCode != c.code || c.approved == (first.ChargeID == "") {
			t.Errorf("%q: %+v, want approved %v code %q", c.token, first, c.approved, c.code)
		}
		again, err := sb.Charge(ctx, req)
		if err != nil || again != first {
			t.Errorf("%q again: %+v %v, want the first result %+v", c.token, again, err, first)
		}
	}
	if approved, calls := sb.Charges(); approved != 1 || calls != 10 {
		t.Errorf("approved %d of %d calls, want 1 of 10", approved, calls)
	}

	// A transient failure is not remembered: every call fails again.
	for range 3 {
		if _, err := sb.Charge(ctx, core.ChargeRequest{IdempotencyKey: "flaky", Token: core.TokenProcessingError}); !errors.Is(err, core.ErrProcessing) {
			t.Fatalf("processing error token: %v", err)
		}
	}

	refund := core.RefundRequest{IdempotencyKey: "r1", ChargeID: "ch_1", Amount: 1250, Currency: "EUR"}
	r1, err1 := sb.Refund(ctx, refund)
	r2, err2 := sb.Refund(ctx, refund)
	if err1 != nil || err2 != nil || r1 != r2 || r1.RefundID == "" || sb.Refunds() != 1 {
		t.Errorf("refunds %+v %+v (%v, %v), %d made; want one, returned twice", r1, r2, err1, err2, sb.Refunds())
	}
}
