package graph

import (
	"context"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/uuids"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// follow streams an order's status to viewer: the current one first, then
// each transition, until a terminal status closes the stream.
func (r *Resolver) follow(ctx context.Context, viewer auth.Principal, orderID string) (<-chan *OrderStatusEvent, error) {
	id, ok := uuids.Canonical(orderID)
	if !ok {
		return nil, gqlerr.Errorf(gqlerr.NotFound, "no order with id %s", orderID)
	}
	// Subscribe before reading the status: a transition committed in
	// between is then both in what we read and on the feed (dropped below
	// as not newer), never in neither.
	ctx, cancel := context.WithCancel(ctx)
	changes := r.Changes.Subscribe(ctx, id)
	o, err := r.Store.Get(ctx, viewer, id)
	if err != nil || o == nil {
		cancel()
		if err == nil {
			err = gqlerr.Errorf(gqlerr.NotFound, "no order with id %s", orderID)
		}
		return nil, err
	}
	first := &OrderStatusEvent{OrderID: o.ID, Status: o.Status, Reason: o.Reason, At: o.UpdatedAt}
	out := make(chan *OrderStatusEvent)
	go func() {
		defer cancel()
		defer close(out)
		send := func(e *OrderStatusEvent) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		sent := o.Status
		if !send(first) || sent.Terminal() {
			return
		}
		// A closed feed (shutdown, or this subscriber fell too far behind)
		// completes the stream; the client resubscribes and starts again
		// from the status then.
		for ev := range changes {
			m, ok := ev.Message.(*orderv1.OrderStatusChanged)
			if !ok {
				continue
			}
			// Statuses only go up in rank, so a rank not above the last one
			// sent is something the client already has.
			status := core.StatusFromProto(m.GetNewStatus())
			if status.Rank() <= sent.Rank() {
				continue
			}
			e := &OrderStatusEvent{OrderID: o.ID, Status: status, At: m.GetChangedAt().AsTime()}
			if m.GetReason() != "" {
				reason := core.Reason(m.GetReason())
				e.Reason = &reason
			}
			if sent = status; !send(e) || status.Terminal() {
				return
			}
		}
	}()
	return out, nil
}
