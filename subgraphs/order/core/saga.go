package core

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/events"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
)

// The saga steps. The inbox makes an exact redelivery a no-op; what is left
// is events of different topics arriving in any relative order, and events
// the order has outgrown. Each step says which moves it makes from which
// status; from any other status the event is logged and dropped (returning
// an error would only retry something that can never apply).

// OnStockReserved handles StockReserved: the lines are reserved, so
// payment may charge.
//   - PENDING → AWAITING_PAYMENT.
//   - CANCELLED (the customer cancelled first): dropped; inventory releases
//     the reservation when it sees CANCELLED.
//   - AWAITING_PAYMENT or later (PaymentSucceeded was handled first and
//     took the order through AWAITING_PAYMENT already): dropped.
func (s *Orders) OnStockReserved(ctx context.Context, tx bun.Tx, meta events.Meta, m *inventoryv1.StockReserved) error {
	return s.step(ctx, tx, meta, m.GetOrderId(), nil, func(from Status) []Status {
		if from == Pending {
			return []Status{AwaitingPayment}
		}
		return nil
	})
}

// OnStockReservationFailed handles StockReservationFailed: nothing was
// reserved, the order cannot go on.
//   - PENDING → CANCELLED (OUT_OF_STOCK).
//   - CANCELLED already (the customer was quicker): dropped. Any other
//     status cannot meet this event (inventory sends StockReserved or
//     this, never both) and it is dropped too.
func (s *Orders) OnStockReservationFailed(ctx context.Context, tx bun.Tx, meta events.Meta, m *inventoryv1.StockReservationFailed) error {
	r := OutOfStock
	return s.step(ctx, tx, meta, m.GetOrderId(), &r, func(from Status) []Status {
		if from == Pending {
			return []Status{Cancelled}
		}
		return nil
	})
}

// OnPaymentSucceeded handles PaymentSucceeded: the order is paid.
//   - AWAITING_PAYMENT → CONFIRMED.
//   - PENDING → AWAITING_PAYMENT → CONFIRMED in one transaction: payment
//     charges only after StockReserved, so the stock is reserved and only
//     our handling of that event lags (it is on another topic). Waiting
//     for it by failing would block this consumer on the very record it
//     waits behind and end in the dead-letter topic; both transitions are
//     recorded and announced, and the late StockReserved is dropped.
//   - CANCELLED (the customer cancelled while payment was charging):
//     dropped; payment saw CANCELLED too and refunds.
func (s *Orders) OnPaymentSucceeded(ctx context.Context, tx bun.Tx, meta events.Meta, m *paymentv1.PaymentSucceeded) error {
	return s.step(ctx, tx, meta, m.GetOrderId(), nil, func(from Status) []Status {
		switch from {
		case Pending:
			return []Status{AwaitingPayment, Confirmed}
		case AwaitingPayment:
			return []Status{Confirmed}
		}
		return nil
	})
}

// OnPaymentFailed handles PaymentFailed: the charge was declined or kept
// failing.
//   - AWAITING_PAYMENT, or PENDING (StockReserved not handled yet, as
//     above) → CANCELLED, PAYMENT_DECLINED for DECLINED and
//     INSUFFICIENT_FUNDS, PAYMENT_FAILED otherwise. Inventory releases the
//     reservation on CANCELLED; the late StockReserved is dropped.
//   - CANCELLED already: dropped. CONFIRMED or later cannot meet this
//     event (a payment succeeds or fails, not both); it is dropped rather
//     than cancelling a paid order.
func (s *Orders) OnPaymentFailed(ctx context.Context, tx bun.Tx, meta events.Meta, m *paymentv1.PaymentFailed) error {
	r := PaymentFailed
	if m.GetCode() == "DECLINED" || m.GetCode() == "INSUFFICIENT_FUNDS" {
		r = PaymentDeclined
	}
	return s.step(ctx, tx, meta, m.GetOrderId(), &r, func(from Status) []Status {
		if from == Pending || from == AwaitingPayment {
			return []Status{Cancelled}
		}
		return nil
	})
}

// step locks the order and makes the moves plan gives for its status;
// reason goes with a move to CANCELLED. When plan has none for the status
// (the event does not apply to it) the event is logged and dropped; the
// status machine still checks every move. An unknown order is dropped
// too: orders commit with their OrderPlaced, so no saga event can precede
// them.
func (s *Orders) step(ctx context.Context, tx bun.Tx, meta events.Meta, orderID string, reason *Reason, plan func(from Status) []Status) error {
	o, err := lock(ctx, tx, orderID)
	if err != nil {
		return err
	}
	if o == nil {
		s.log.Warn("ignoring event for an unknown order", "type", meta.Type, "event_id", meta.ID, "order_id", orderID)
		return nil
	}
	moves := plan(o.Status)
	if len(moves) == 0 || !CanTransition(o.Status, moves[0]) {
		s.log.Info("ignoring event that does not apply to the order's status", "type", meta.Type, "event_id", meta.ID,
			"order_id", o.ID, "status", o.Status)
		return nil
	}
	for _, to := range moves {
		var why *Reason
		if to == Cancelled {
			why = reason
		}
		if err := s.transition(ctx, tx, o, to, why); err != nil {
			return err
		}
	}
	return nil
}
