package core

import (
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/onlinemart/mart/proto/inventory/v1"
)

// Publishes are the events the inventory writes to its outbox: the answer
// to each placed order, and stock running low.
var Publishes = []proto.Message{
	(*inventoryv1.StockReserved)(nil), (*inventoryv1.StockReservationFailed)(nil), (*inventoryv1.StockLow)(nil),
}
