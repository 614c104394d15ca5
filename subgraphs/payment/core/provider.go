package core

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
)

// PaymentProvider moves the money: a card processor behind an API. Both
// calls are idempotent by IdempotencyKey: repeating a key returns the first
// result and moves nothing more, which is what lets a charge be retried
// after a timeout or a crash without charging twice.
//
// A result is definitive (approved or declined). An error means the outcome
// is unknown or the provider failed transiently: the caller retries with
// the same key.
type PaymentProvider interface {
	// Name identifies the provider in stored payments, e.g. "sandbox".
	Name() string
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}

// ChargeRequest asks to take Amount (minor units of Currency) from the
// payment method Token.
type ChargeRequest struct {
	IdempotencyKey string
	Amount         int64
	Currency       string
	Token          string
}

// ChargeResult is the provider's answer to a charge.
type ChargeResult struct {
	Approved bool
	ChargeID string // the provider's reference of an approved charge
	// Set when declined: DECLINED or INSUFFICIENT_FUNDS, and a message.
	DeclineCode   string
	DeclineReason string
}

// RefundRequest asks to return Amount of the approved charge ChargeID.
type RefundRequest struct {
	IdempotencyKey string
	ChargeID       string
	Amount         int64
	Currency       string
}

// RefundResult is the provider's answer to a refund.
type RefundResult struct {
	RefundID string
}

// Sandbox test tokens: the outcome of a sandbox charge depends on the token
// alone.
const (
	TokenVisa              = "tok_visa"              // approved
	TokenChargeDeclined    = "tok_chargeDeclined"    // declined: DECLINED
	TokenInsufficientFunds = "tok_insufficientFunds" // declined: INSUFFICIENT_FUNDS
	TokenProcessingError   = "tok_processingError"   // ErrProcessing, every time
)

// ErrProcessing is the sandbox's transient failure.
var ErrProcessing = errors.New("sandbox: processing error, try again")

// Sandbox is the default PaymentProvider: it moves no money and decides by
// the token alone.
//
//	tok_visa               approved
//	tok_chargeDeclined     declined, code DECLINED
//	tok_insufficientFunds  declined, code INSUFFICIENT_FUNDS
//	tok_processingError    fails with ErrProcessing (retryable) every time
//	any other token        declined, code DECLINED
//
// Refunds always succeed. Like a real provider it is idempotent by
// IdempotencyKey (the same key returns the first result; failed calls are
// not remembered). It remembers keys in memory only, so the payment
// database, not the sandbox, is what guarantees one charge per order.
type Sandbox struct {
	mu       sync.Mutex
	charges  map[string]ChargeResult
	refunds  map[string]RefundResult
	approved int // charges that took money
	refunded int
	calls    int // Charge calls, whatever their outcome
}

// NewSandbox returns an empty sandbox.
func NewSandbox() *Sandbox {
	return &Sandbox{charges: map[string]ChargeResult{}, refunds: map[string]RefundResult{}}
}

// Name implements PaymentProvider.
func (s *Sandbox) Name() string { return "sandbox" }

// Charge implements PaymentProvider.
func (s *Sandbox) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if err := ctx.Err(); err != nil {
		return ChargeResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if req.IdempotencyKey == "" {
		return ChargeResult{}, errors.New("sandbox: an idempotency key is required")
	}
	if r, ok := s.charges[req.IdempotencyKey]; ok {
		return r, nil
	}
	var r ChargeResult
	switch req.Token {
	case TokenVisa:
		r = ChargeResult{Approved: true, ChargeID: "ch_" + rand.Text()}
		s.approved++
	case TokenProcessingError:
		return ChargeResult{}, ErrProcessing
	case TokenInsufficientFunds:
		r = ChargeResult{DeclineCode: CodeInsufficientFunds, DeclineReason: "insufficient funds"}
	case TokenChargeDeclined:
		r = ChargeResult{DeclineCode: CodeDeclined, DeclineReason: "the card was declined"}
	default:
		r = ChargeResult{DeclineCode: CodeDeclined, DeclineReason: "unknown payment method"}
	}
	s.charges[req.IdempotencyKey] = r
	return r, nil
}

// Refund implements PaymentProvider.
func (s *Sandbox) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if err := ctx.Err(); err != nil {
		return RefundResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.IdempotencyKey == "" || req.ChargeID == "" {
		return RefundResult{}, errors.New("sandbox: an idempotency key and a charge id are required")
	}
	if r, ok := s.refunds[req.IdempotencyKey]; ok {
		return r, nil
	}
	r := RefundResult{RefundID: "re_" + rand.Text()}
	s.refunds[req.IdempotencyKey] = r
	s.refunded++
	return r, nil
}

// Charges returns how many charges took money (repeats of a key not
// counted), and how many Charge calls were made in all.
func (s *Sandbox) Charges() (approved, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.approved, s.calls
}

// Refunds returns how many refunds were made (repeats of a key not
// counted).
func (s *Sandbox) Refunds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refunded
}
