package core

import (
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
)

// Status is where an order stands.
type Status string

// Statuses of an order, from placed to a terminal one (the README's order saga).
const (
	Pending         Status = "PENDING"
	AwaitingPayment Status = "AWAITING_PAYMENT"
	Confirmed       Status = "CONFIRMED"
	Shipped         Status = "SHIPPED"
	Delivered       Status = "DELIVERED"
	Cancelled       Status = "CANCELLED"
)

// Reason says why an order was cancelled.
type Reason string

// Reasons for CANCELLED.
const (
	OutOfStock        Reason = "OUT_OF_STOCK"
	PaymentDeclined   Reason = "PAYMENT_DECLINED"
	PaymentFailed     Reason = "PAYMENT_FAILED"
	CustomerCancelled Reason = "CUSTOMER_CANCELLED"
)

// transitions is the order status machine: the only moves an order may
// make. Every change of status, whoever asks, is checked against it.
var transitions = map[Status][]Status{
	Pending:         {AwaitingPayment, Cancelled},
	AwaitingPayment: {Confirmed, Cancelled},
	Confirmed:       {Shipped, Cancelled}, // cancelling a confirmed order refunds and restocks
	Shipped:         {Delivered},
}

// CanTransition reports whether an order may move from one status to the
// other.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether no move leaves s.
func (s Status) Terminal() bool { return len(transitions[s]) == 0 }

// Rank orders statuses so that every transition goes up: an order's
// history is strictly increasing in rank, so a status of higher rank than
// one already seen is news (subscriptions rely on this).
func (s Status) Rank() int {
	switch s {
	case Pending:
		return 1
	case AwaitingPayment:
		return 2
	case Confirmed:
		return 3
	case Shipped:
		return 4
	case Delivered:
		return 5
	case Cancelled:
		return 6
	}
	return 0
}

var toProto = map[Status]orderv1.Status{
	Pending:         orderv1.Status_STATUS_PENDING,
	AwaitingPayment: orderv1.Status_STATUS_AWAITING_PAYMENT,
	Confirmed:       orderv1.Status_STATUS_CONFIRMED,
	Shipped:         orderv1.Status_STATUS_SHIPPED,
	Delivered:       orderv1.Status_STATUS_DELIVERED,
	Cancelled:       orderv1.Status_STATUS_CANCELLED,
}

// Proto returns s as the event contract spells it.
func (s Status) Proto() orderv1.Status { return toProto[s] }

// StatusFromProto returns the status an event names, "" for an unknown one.
func StatusFromProto(p orderv1.Status) Status {
	for s, v := range toProto {
		if v == p {
			return s
		}
	}
	return ""
}
