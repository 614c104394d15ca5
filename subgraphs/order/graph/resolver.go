// Package graph is the order subgraph's GraphQL layer: gqlgen's generated
// executor plus resolvers that translate to and from the core package and
// decide who may see which order.
package graph

import (
	"time"

	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct {
	Store   *core.Orders
	Changes *live.Feed // order.events.v1 by order id, for subscriptions
}

// OrderStatusEvent is one message of orderStatusChanged; its order is
// resolved only when asked for.
type OrderStatusEvent struct {
	OrderID string
	Status  core.Status
	Reason  *core.Reason
	At      time.Time
}
