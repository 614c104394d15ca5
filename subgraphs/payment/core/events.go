package core

import (
	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
)

// Publishes are the events the payment service writes to its outbox: the
// outcome of each charge, and each refund.
var Publishes = []proto.Message{
	(*paymentv1.PaymentSucceeded)(nil), (*paymentv1.PaymentFailed)(nil), (*paymentv1.PaymentRefunded)(nil),
}
