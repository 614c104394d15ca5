package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/wundergraph/graphql-go-tools/execution/subscription"
	"github.com/wundergraph/graphql-go-tools/execution/subscription/websocket"

	"github.com/onlinemart/mart/internal/auth"
)

// closeTryAgainLater is the websocket close code (RFC 6455's registry) of a
// connection refused for now.
const closeTryAgainLater ws.StatusCode = 1013

var refusedConnections = promauto.NewCounter(prometheus.CounterOpts{
	Name: "mart_router_refused_websockets_total",
	Help: "Websocket connections closed at once (1013) because their client address had as many open as allowed.",
})

func isWebsocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// serveWebsocket runs one websocket connection; principal is whom the
// upgrade's Authorization header named (zero without one).
func (rt *Router) serveWebsocket(w http.ResponseWriter, r *http.Request, principal auth.Principal) {
	up := ws.HTTPUpgrader{Protocol: func(p string) bool {
		return p == string(websocket.ProtocolGraphQLTransportWS) || p == string(websocket.ProtocolGraphQLWS)
	}}
	raw, _, hs, err := up.Upgrade(r, w)
	if err != nil {
		// The upgrader has already answered with a 4xx.
		rt.log.DebugContext(r.Context(), "websocket upgrade failed", "err", err)
		return
	}
	conn := eofConn{raw}

	addr := rt.proxies.clientAddr(r)
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		_ = conn.Close()
		return
	}
	if limit := rt.opts.WSMaxConns; limit > 0 && rt.wsClients[addr] >= limit {
		rt.mu.Unlock()
		// Accepted to be refused: a browser sees a close code and reason,
		// never the status of a failed upgrade.
		refusedConnections.Inc()
		_ = ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(closeTryAgainLater, fmt.Sprintf("too many connections from %s: at most %d at once", addr, limit))))
		// Until the client answers the close: closing on its unread
		// connection_init would reset the connection, close frame and all.
		_ = conn.SetReadDeadline(time.Now().Add(tooBigLinger))
		_, _ = io.Copy(io.Discard, conn)
		_ = conn.Close()
		return
	}
	rt.wsConns[conn] = struct{}{}
	rt.wsClients[addr]++
	rt.wsDone.Add(1)
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		delete(rt.wsConns, conn)
		if rt.wsClients[addr]--; rt.wsClients[addr] <= 0 {
			delete(rt.wsClients, addr)
		}
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
	client := &limitedClient{Client: websocket.NewClient(rt.engineLog, conn), conn: conn, limit: rt.opts.MaxBodyBytes}
	gate := &tokenGate{
		TransportClient: client,
		ctx:             r.Context(),
		rt:              rt,
		protocol:        protocol,
		upstream:        upstream.Header,
	}
	gate.expireAt(principal)
	defer gate.stop()
	done := make(chan bool)
	errc := make(chan error, 1)
	// Handle blocks until the client goes away or Close closes conn. It
	// speaks the protocol; wsOperations runs the operations.
	websocket.Handle(done, errc, conn, nil,
		websocket.WithProtocol(protocol),
		websocket.WithCustomClient(gate),
		websocket.WithCustomSubscriptionEngine(newWSOperations(rt, upstream.Header, gate, protocol)),
		websocket.WithLogger(rt.engineLog),
	)
	select {
	case err := <-errc:
		rt.log.ErrorContext(r.Context(), "websocket handler failed", "err", err)
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

// limitedClient is the engine's websocket client with a bounded read and
// serialised writes. The engine's own read (wsutil.ReadClientData) takes a
// message whole, however large; this one stops at the body limit,
// MaxBodyBytes: a frame whose header announces more is refused before its
// payload is read, and a fragmented message as soon as its parts add up to
// more. Either closes the connection with 1009 (message too big). Frames
// are written from several goroutines (the engine's messages, answers to
// pings from the read loop, the close when a token expires); one lock
// keeps each whole.
type limitedClient struct {
	*websocket.Client // writes and closes
	conn              net.Conn
	limit             int64 // <= 0: none
	writes            sync.Mutex
}

// WriteBytesToClient writes one message, never in the middle of another
// frame.
func (c *limitedClient) WriteBytesToClient(data []byte) error {
	c.writes.Lock()
	defer c.writes.Unlock()
	return c.Client.WriteBytesToClient(data)
}

// DisconnectWithReason closes the connection, never in the middle of a
// frame.
func (c *limitedClient) DisconnectWithReason(reason any) error {
	c.writes.Lock()
	defer c.writes.Unlock()
	return c.Client.DisconnectWithReason(reason)
}

// Write writes raw frames (control answers) under the same lock.
func (c *limitedClient) Write(p []byte) (int, error) {
	c.writes.Lock()
	defer c.writes.Unlock()
	return c.conn.Write(p)
}

func (c *limitedClient) Read(p []byte) (int, error) { return c.conn.Read(p) }

var errMessageTooBig = errors.New("message too big")

func (c *limitedClient) ReadBytesFromClient() ([]byte, error) {
	if !c.IsConnected() {
		return nil, subscription.ErrTransportClientClosedConnection
	}
	data, err := readClientMessage(c, c.limit)
	var closed wsutil.ClosedError
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, errMessageTooBig):
		c.refuseTooBig()
		return nil, subscription.ErrTransportClientClosedConnection
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrClosedPipe), errors.As(err, &closed):
		// The client went away or closed (the close was answered).
		_ = c.Disconnect()
		return nil, subscription.ErrTransportClientClosedConnection
	}
	return nil, err
}

// tooBigLinger bounds how long a refused client may go on sending.
const tooBigLinger = time.Second

// refuseTooBig closes the connection with 1009. The rest of the message is
// usually still arriving: closing on unread data resets the connection,
// and a reset can make the client lose the close frame. So the rest is
// read and dropped first, until the client closes or for tooBigLinger.
func (c *limitedClient) refuseTooBig() {
	_ = ws.WriteFrame(c, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusMessageTooBig, "message too big")))
	_ = c.conn.SetReadDeadline(time.Now().Add(tooBigLinger))
	_, _ = io.Copy(io.Discard, c.conn)
	_ = c.Disconnect()
}

// readClientMessage is wsutil.ReadClientData with a limit on the message
// size: it answers control frames, skips continuation frames that start
// nothing, and returns the next text or binary message.
func readClientMessage(rw io.ReadWriter, limit int64) ([]byte, error) {
	control := wsutil.ControlFrameHandler(rw, ws.StateServerSide)
	rd := wsutil.Reader{
		Source:         rw,
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		OnIntermediate: control,
		MaxFrameSize:   max(limit, 0), // checked on each frame's header, before its payload
	}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return nil, tooBig(err)
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, &rd); err != nil {
				return nil, err
			}
			continue
		}
		if hdr.OpCode&(ws.OpText|ws.OpBinary) == 0 {
			if err := rd.Discard(); err != nil {
				return nil, tooBig(err)
			}
			continue
		}
		if limit <= 0 || limit == math.MaxInt64 {
			return io.ReadAll(&rd)
		}
		// The total of a fragmented message: one byte over is enough to know.
		data, err := io.ReadAll(io.LimitReader(&rd, limit+1))
		if err == nil && int64(len(data)) > limit {
			err = errMessageTooBig
		}
		return data, tooBig(err)
	}
}

func tooBig(err error) error {
	if errors.Is(err, wsutil.ErrFrameTooLarge) {
		return errMessageTooBig
	}
	return err
}
