package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gobwas/ws"
	"github.com/wundergraph/graphql-go-tools/execution/subscription/websocket"
)

func isWebsocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (rt *Router) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	up := ws.HTTPUpgrader{Protocol: func(p string) bool {
		return p == string(websocket.ProtocolGraphQLTransportWS) || p == string(websocket.ProtocolGraphQLWS)
	}}
	raw, _, hs, err := up.Upgrade(r, w)
	if err != nil {
		// The upgrader has already answered with a 4xx.
		rt.log.DebugContext(r.Context(), "websocket upgrade failed", "error", err)
		return
	}
	conn := eofConn{raw}

	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		_ = conn.Close()
		return
	}
	rt.wsConns[conn] = struct{}{}
	rt.wsDone.Add(1)
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		delete(rt.wsConns, conn)
		rt.mu.Unlock()
		rt.wsDone.Done()
	}()

	// The engine sends this request's headers on every subgraph upgrade
	// (through the header templates). Browsers cannot set headers on a
	// websocket, so the token travels in connection_init; the gate verifies
	// it and copies it here. The copy is ours to change and outlives the
	// hijacked request's context.
	upstream := r.Clone(context.WithoutCancel(r.Context()))

	protocol := websocket.Protocol(hs.Protocol)
	if protocol == websocket.ProtocolUndefined {
		protocol = websocket.DefaultProtocol
	}
	gate := &tokenGate{
		TransportClient: websocket.NewClient(rt.engineLog, conn),
		ctx:             r.Context(),
		rt:              rt,
		protocol:        protocol,
		upstream:        upstream.Header,
	}
	done := make(chan bool)
	errc := make(chan error, 1)
	// Handle blocks until the client goes away or Close closes conn. It
	// speaks the protocol; wsOperations runs the operations.
	websocket.Handle(done, errc, conn, nil,
		websocket.WithProtocol(protocol),
		websocket.WithCustomClient(gate),
		websocket.WithCustomSubscriptionEngine(newWSOperations(rt, upstream.Header)),
		websocket.WithLogger(rt.engineLog),
	)
	select {
	case err := <-errc:
		rt.log.ErrorContext(r.Context(), "websocket handler failed", "error", err)
	default:
	}
}

// eofConn reports any transport read error as io.EOF. The engine ends a
// connection promptly only on EOF; other read errors (reset by the peer,
// closed by Close) make it retry reading for seconds before giving up.
// Frame-level errors are detected above this layer and are unaffected.
type eofConn struct{ net.Conn }

func (c eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		err = io.EOF
	}
	return n, err
}
