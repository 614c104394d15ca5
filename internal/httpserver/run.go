package httpserver

import (
	"context"
	"net"
)

// Run listens, tells onListen where, and serves until ctx is cancelled.
func (s *Server) Run(ctx context.Context, onListen func(net.Addr)) error {
	addr, err := s.Listen()
	if err != nil {
		return err
	}
	onListen(addr)
	return s.Serve(ctx)
}
