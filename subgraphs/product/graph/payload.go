package graph

import (
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/product/core"
)

// payload wraps a command's outcome as a mutation payload.
func payload(p *core.Product, errs []usererror.UserError, err error) (*ProductPayload, error) {
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		p = nil
	}
	return &ProductPayload{Product: p, UserErrors: usererror.OrEmpty(errs)}, nil
}
