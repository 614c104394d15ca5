package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
)

// Consumes are the saga events payment reacts to: an order's amount when
// it is placed, the reservation that makes it chargeable, and the status
// changes that cancel it (handlers in payments.go).
var Consumes = []proto.Message{
	(*orderv1.OrderPlaced)(nil), (*orderv1.OrderStatusChanged)(nil),
	(*inventoryv1.StockReserved)(nil),
}

// RegisterHandlers registers a handler for each of Consumes.
func (p *Payments) RegisterHandlers(h *inbox.Handlers) {
	inbox.Handle(h, p.OnOrderPlaced)
	inbox.Handle(h, p.OnStockReserved)
	inbox.Handle(h, p.OnOrderStatusChanged)
}
