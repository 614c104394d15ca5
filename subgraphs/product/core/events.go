package core

import (
	"google.golang.org/protobuf/proto"

	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

// Publishes are the events the catalog writes to its outbox, one per
// change of a product.
var Publishes = []proto.Message{
	(*productv1.ProductCreated)(nil), (*productv1.ProductUpdated)(nil), (*productv1.ProductArchived)(nil),
}
