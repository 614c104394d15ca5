package graph

import (
	"context"

	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// orderPayload wraps a command's outcome as a mutation payload.
func orderPayload(o *core.Order, errs []usererror.UserError, err error) (*OrderPayload, error) {
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		o = nil
	}
	return &OrderPayload{Order: o, UserErrors: usererror.OrEmpty(errs)}, nil
}

// list answers a connection of orders; the caller has checked who asks.
func (r *Resolver) list(ctx context.Context, first *int, after *string, f core.Filter) (*OrderConnection, error) {
	edges, info, err := page.Connection(first, after, func(req page.Request) (*page.Page[*core.Order], error) {
		return r.Store.List(ctx, req, f)
	}, func(o *core.Order, c string) OrderEdge { return OrderEdge{Node: o, Cursor: c} })
	if err != nil {
		return nil, err
	}
	return &OrderConnection{Edges: edges, PageInfo: info}, nil
}
