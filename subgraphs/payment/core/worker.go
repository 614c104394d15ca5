package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/ptr"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
)

// Outcomes of provider calls, counted by the metrics below.
const (
	OutcomeApproved = "approved"
	OutcomeDeclined = "declined"
	OutcomeError    = "error"
	OutcomeRefunded = "refunded"
)

var (
	chargesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_payment_charges_total",
		Help: "Charge calls to the payment provider by outcome (approved, declined, error).",
	}, []string{"provider", "outcome"})
	refundsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_payment_refunds_total",
		Help: "Refund calls to the payment provider by outcome (refunded, error).",
	}, []string{"provider", "outcome"})
)

// Run charges and refunds due payments until ctx is cancelled, then lets
// the calls in flight finish and record their results, and returns nil.
// The payments table is its job queue (internal/jobs).
//
// Why a worker and not the event handler: a provider call may take seconds
// and a failing one is retried with backoff. Inside the handler it would
// hold the inbox transaction (and a row lock) open across the call and
// stall every later event of the partition, cancellations included. So
// each call runs between two short transactions: one claims the payment
// (counting the attempt and leasing the row), the next records the result
// with its event in the outbox. A worker that dies in between leaves the
// lease to expire; the payment is then claimed again and the provider
// called again with the same idempotency key (the payment id), which
// returns the first result instead of charging twice. Replicas share the
// queue through FOR UPDATE SKIP LOCKED; within one, up to Jobs.Workers
// calls run at a time.
func (p *Payments) Run(ctx context.Context) error {
	return jobs.Run(ctx, p.db, "payments", p.opts.Jobs, p.ProcessNext)
}

// ProcessNext claims one due payment, makes its provider call and records
// the result. It reports whether there was one.
func (p *Payments) ProcessNext(ctx context.Context) (bool, error) {
	pay, err := p.claim(ctx)
	if err != nil || pay == nil {
		return false, err
	}
	return true, p.process(ctx, pay)
}

// process makes the provider call of a claimed payment and records it.
func (p *Payments) process(ctx context.Context, pay *Payment) error {
	// Shutdown waits for the unit of work rather than abandoning it midway.
	ctx = events.WithTraceparent(context.WithoutCancel(ctx), pay.Traceparent)
	switch pay.Status {
	case Charging:
		return p.charge(ctx, pay)
	case Succeeded:
		return p.refund(ctx, pay)
	}
	return fmt.Errorf("payment %s: nothing to do in status %s", pay.ID, pay.Status)
}

// claim takes the payment due first, counts the attempt and leases it long
// enough for the call to finish, in one statement.
func (p *Payments) claim(ctx context.Context) (*Payment, error) {
	at := postgres.Now()
	pay := new(Payment)
	err := p.db.NewRaw(`UPDATE payments SET
			charge_attempts = charge_attempts + (status = 'CHARGING')::int,
			refund_attempts = refund_attempts + (status = 'SUCCEEDED')::int,
			next_attempt_at = ?, updated_at = ?
		WHERE id = (SELECT id FROM payments WHERE next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING *`, at.Add(2*p.opts.CallTimeout), at, at).Scan(ctx, pay)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim payment: %w", err)
	}
	return pay, nil
}

// charge calls the provider for a claimed CHARGING payment and records the
// outcome: SUCCEEDED or FAILED with its event, or a later retry.
func (p *Payments) charge(ctx context.Context, claimed *Payment) error {
	cctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	res, callErr := p.provider.Charge(cctx, ChargeRequest{
		IdempotencyKey: claimed.ID, Amount: claimed.AmountMinor, Currency: claimed.Currency, Token: ptr.Value(claimed.Token),
	})
	cancel()
	outcome := OutcomeError
	if callErr == nil {
		outcome = OutcomeApproved
		if !res.Approved {
			outcome = OutcomeDeclined
		}
	}
	chargesTotal.WithLabelValues(p.provider.Name(), outcome).Inc()

	return p.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		pay, err := lock(ctx, tx, claimed.ID)
		if err != nil || pay.Status != Charging {
			return err // another worker, whose lease this one outlived, recorded it
		}
		at := postgres.Now()
		switch {
		case callErr != nil && pay.ChargeAttempts < p.opts.MaxAttempts:
			wait := p.backoff(pay.ChargeAttempts)
			pay.NextAttemptAt = new(at.Add(wait))
			p.log.Warn("charge failed, retrying", "payment_id", pay.ID, "order_id", pay.OrderID,
				"attempt", pay.ChargeAttempts, "retry_in", wait, "err", callErr)
			return update(ctx, tx, pay, at)
		case callErr != nil:
			p.log.Error("charge failed for good", "payment_id", pay.ID, "order_id", pay.OrderID,
				"attempts", pay.ChargeAttempts, "err", callErr)
			return p.fail(ctx, tx, pay, at, CodeProcessingError, "the payment could not be processed")
		case res.Approved:
			pay.Status, pay.ChargeID, pay.ChargedAt, pay.Token = Succeeded, &res.ChargeID, &at, nil
			pay.NextAttemptAt = nil
			if pay.CancelledAt != nil {
				// The order was cancelled while the charge was in flight.
				pay.NextAttemptAt = &at
			}
			if err := update(ctx, tx, pay, at); err != nil {
				return err
			}
			return p.events.Add(ctx, tx, pay.OrderID, &paymentv1.PaymentSucceeded{
				OrderId: pay.OrderID, PaymentId: pay.ID, Amount: money(pay), SucceededAt: timestamppb.New(at),
			})
		default:
			code := res.DeclineCode
			if code != CodeInsufficientFunds {
				code = CodeDeclined // the contract knows no other decline
			}
			reason := res.DeclineReason
			if reason == "" {
				reason = "the payment was declined"
			}
			return p.fail(ctx, tx, pay, at, code, reason)
		}
	})
}

func (p *Payments) fail(ctx context.Context, tx bun.Tx, pay *Payment, at time.Time, code, reason string) error {
	pay.Status, pay.FailureCode, pay.FailureReason = Failed, &code, &reason
	pay.Token, pay.NextAttemptAt = nil, nil
	if err := update(ctx, tx, pay, at); err != nil {
		return err
	}
	return p.events.Add(ctx, tx, pay.OrderID, &paymentv1.PaymentFailed{
		OrderId: pay.OrderID, PaymentId: pay.ID, Code: code, Reason: reason, FailedAt: timestamppb.New(at),
	})
}

// refund returns the money of a claimed SUCCEEDED payment whose order was
// cancelled, and records REFUNDED with its event; a failure is retried,
// however long it takes.
func (p *Payments) refund(ctx context.Context, claimed *Payment) error {
	cctx, cancel := context.WithTimeout(ctx, p.opts.CallTimeout)
	res, callErr := p.provider.Refund(cctx, RefundRequest{
		// Its own key: a provider may share one key space between calls.
		IdempotencyKey: claimed.ID + "/refund", ChargeID: ptr.Value(claimed.ChargeID),
		Amount: claimed.AmountMinor, Currency: claimed.Currency,
	})
	cancel()
	outcome := OutcomeRefunded
	if callErr != nil {
		outcome = OutcomeError
	}
	refundsTotal.WithLabelValues(p.provider.Name(), outcome).Inc()

	return p.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		pay, err := lock(ctx, tx, claimed.ID)
		if err != nil || pay.Status != Succeeded || pay.NextAttemptAt == nil {
			return err
		}
		at := postgres.Now()
		if callErr != nil {
			wait := p.backoff(pay.RefundAttempts)
			pay.NextAttemptAt = new(at.Add(wait))
			log := p.log.Warn
			if pay.RefundAttempts >= p.opts.MaxAttempts {
				log = p.log.Error // still retried: the customer is owed the money
			}
			log("refund failed, retrying", "payment_id", pay.ID, "order_id", pay.OrderID,
				"attempt", pay.RefundAttempts, "retry_in", wait, "err", callErr)
			return update(ctx, tx, pay, at)
		}
		pay.Status, pay.RefundID, pay.RefundedAt, pay.NextAttemptAt = Refunded, &res.RefundID, &at, nil
		if err := update(ctx, tx, pay, at); err != nil {
			return err
		}
		return p.events.Add(ctx, tx, pay.OrderID, &paymentv1.PaymentRefunded{
			OrderId: pay.OrderID, PaymentId: pay.ID, Amount: money(pay), RefundedAt: timestamppb.New(at),
		})
	})
}

// backoff is the wait after the attempt-th failed call: doubling from
// InitialBackoff up to MaxBackoff, with jitter.
func (p *Payments) backoff(attempt int) time.Duration {
	return jobs.Backoff(attempt, p.opts.InitialBackoff, p.opts.MaxBackoff)
}

// lock reads a payment FOR UPDATE, so its events enter the outbox in the
// order its changes commit.
func lock(ctx context.Context, tx bun.Tx, id string) (*Payment, error) {
	pay := new(Payment)
	if err := tx.NewSelect().Model(pay).Where("id = ?", id).For("UPDATE").Scan(ctx); err != nil {
		return nil, fmt.Errorf("lock payment %s: %w", id, err)
	}
	return pay, nil
}

func money(pay *Payment) *commonv1.Money {
	return &commonv1.Money{Amount: pay.AmountMinor, Currency: pay.Currency}
}
