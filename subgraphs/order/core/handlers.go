package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// Consumes are the events the order service handles: the catalog's, for
// its copy of it (catalog.go), and the saga's answers from inventory and
// payment (saga.go).
var Consumes = []proto.Message{
	(*productv1.ProductCreated)(nil), (*productv1.ProductUpdated)(nil), (*productv1.ProductArchived)(nil),
	(*inventoryv1.StockReserved)(nil), (*inventoryv1.StockReservationFailed)(nil),
	(*paymentv1.PaymentSucceeded)(nil), (*paymentv1.PaymentFailed)(nil),
}

// RegisterHandlers registers a handler for each of Consumes.
func (s *Orders) RegisterHandlers(h *inbox.Handlers) {
	inbox.Handle(h, s.OnProductCreated)
	inbox.Handle(h, s.OnProductUpdated)
	inbox.Handle(h, s.OnProductArchived)
	inbox.Handle(h, s.OnStockReserved)
	inbox.Handle(h, s.OnStockReservationFailed)
	inbox.Handle(h, s.OnPaymentSucceeded)
	inbox.Handle(h, s.OnPaymentFailed)
}
