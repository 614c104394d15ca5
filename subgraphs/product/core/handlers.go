package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
)

// Consumes is empty: the catalog is the source of what it holds and
// reacts to no other service.
var Consumes []proto.Message

// RegisterHandlers registers a handler for each of Consumes: none.
func (c *Catalog) RegisterHandlers(*inbox.Handlers) {}
