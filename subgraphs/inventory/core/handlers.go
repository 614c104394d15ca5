package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// Consumes are the events the inventory handles: new products get a stock
// row, orders are reserved, committed or released (saga.go).
var Consumes = []proto.Message{
	(*productv1.ProductCreated)(nil),
	(*orderv1.OrderPlaced)(nil), (*orderv1.OrderStatusChanged)(nil),
}

// RegisterHandlers registers a handler for each of Consumes. Each runs in
// the inbox transaction that records the event, so a redelivered event
// changes nothing; the rules next to each handler cover events of one
// order arriving in an unexpected order.
func (inv *Inventory) RegisterHandlers(h *inbox.Handlers) {
	inbox.Handle(h, inv.OnProductCreated)
	inbox.Handle(h, inv.OnOrderPlaced)
	inbox.Handle(h, inv.OnOrderStatusChanged)
}
