package core

import (
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/onlinemart/mart/proto/order/v1"
)

// Publishes are the events the order service writes to its outbox: an
// order placed, and every move of its status.
var Publishes = []proto.Message{
	(*orderv1.OrderPlaced)(nil), (*orderv1.OrderStatusChanged)(nil),
}
