package core

import (
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/inbox"
)

// Consumes is empty: accounts change only through the user service's API.
var Consumes []proto.Message

// RegisterHandlers registers a handler for each of Consumes: none.
func (a *Accounts) RegisterHandlers(*inbox.Handlers) {}
