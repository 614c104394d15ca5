package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
)

// Consumes are the events notification tells users about, or keeps their
// contact details from (handlers in notifications.go).
var Consumes = []proto.Message{
	(*userv1.UserRegistered)(nil), (*userv1.UserProfileUpdated)(nil),
	(*orderv1.OrderPlaced)(nil), (*orderv1.OrderStatusChanged)(nil),
	(*paymentv1.PaymentFailed)(nil), (*paymentv1.PaymentRefunded)(nil),
}

// RegisterHandlers registers a handler for each of Consumes.
func (n *Notifications) RegisterHandlers(h *inbox.Handlers) {
	inbox.Handle(h, n.OnUserRegistered)
	inbox.Handle(h, n.OnUserProfileUpdated)
	inbox.Handle(h, n.OnOrderPlaced)
	inbox.Handle(h, n.OnOrderStatusChanged)
	inbox.Handle(h, n.OnPaymentFailed)
	inbox.Handle(h, n.OnPaymentRefunded)
}
