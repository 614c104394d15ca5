package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/wundergraph/graphql-go-tools/execution/subscription"
	"github.com/wundergraph/graphql-go-tools/execution/subscription/websocket"
)

// Client-facing reasons for refusing a token; the details are only logged.
var (
	//nolint:staticcheck // ST1005: a client-facing message that starts with the header's name, as auth.Middleware's does.
	errNotBearer         = errors.New("Authorization must be a Bearer token")
	errManyAuthorization = errors.New("send at most one Authorization header")
)

// authenticate verifies the bearer token among the Authorization values, if
// any, and returns whom it names: no token passes (subgraphs decide per
// field; the principal is zero), a bad one is refused. Empty values count
// as none, as clients often send one when signed out.
func (rt *Router) authenticate(ctx context.Context, values []string) (auth.Principal, error) {
	var present []string
	for _, v := range values {
		if v != "" {
			present = append(present, v)
		}
	}
	if len(present) == 0 || rt.opts.Verifier == nil {
		return auth.Principal{}, nil
	}
	// Subgraphs would receive several values joined by commas.
	if len(present) > 1 {
		return auth.Principal{}, errManyAuthorization
	}
	token, ok := auth.BearerToken(present[0])
	if !ok {
		return auth.Principal{}, errNotBearer
	}
	p, err := rt.opts.Verifier.Verify(ctx, token)
	if err != nil {
		rt.log.DebugContext(ctx, "token refused", "err", err)
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return p, nil
}

// Websocket close codes of graphql-transport-ws, used for graphql-ws too
// after its connection_error.
const (
	closeBadRequest   = 4400
	closeUnauthorized = 4401
	closeForbidden    = 4403
)

// tokenGate is the websocket client as the engine sees it. It checks the
// token of the first connection_init before the engine reads the message,
// so a refused connection never reaches a subgraph, and puts the token on
// the headers the engine sends on subgraph upgrades. The engine's own init
// hook cannot refuse properly: it closes graphql-transport-ws with 4500 and
// leaves graphql-ws open after connection_error.
type tokenGate struct {
	subscription.TransportClient
	ctx      context.Context
	rt       *Router
	protocol websocket.Protocol
	upstream http.Header
	// initialised is touched by the engine's read loop only. Once set,
	// operations may be reading upstream, so the token no longer changes;
	// a repeated connection_init is the engine's to answer.
	initialised bool

	expiry *time.Timer // closes the connection when its token expires
}

// expireAt closes the connection with 4403 when the token it was opened
// with stops being accepted: a subscription must not outlive the access
// it was granted with (a signed-out or demoted user's stream ends with
// their token). Clients reconnect with a fresh token. A principal without
// an expiry (no token) leaves the connection open.
func (g *tokenGate) expireAt(p auth.Principal) {
	if g.expiry != nil {
		g.expiry.Stop()
	}
	if p.ExpiresAt.IsZero() {
		return
	}
	g.expiry = time.AfterFunc(time.Until(p.ExpiresAt), func() {
		g.rt.log.DebugContext(g.ctx, "websocket token expired", "user", p.UserID)
		_ = g.DisconnectWithReason(websocket.NewCloseReason(closeForbidden, "Forbidden: token expired"))
	})
}

// stop ends the expiry timer with the connection.
func (g *tokenGate) stop() {
	if g.expiry != nil {
		g.expiry.Stop()
	}
}

func (g *tokenGate) ReadBytesFromClient() ([]byte, error) {
	data, err := g.TransportClient.ReadBytesFromClient()
	if err != nil || g.initialised {
		return data, err
	}
	var msg struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &msg) != nil {
		return data, nil // the engine answers malformed messages
	}
	switch msg.Type {
	case "connection_init":
		g.initialised = true
		token := websocket.InitPayload(msg.Payload).Authorization()
		p, err := g.rt.authenticate(g.ctx, []string{token})
		if err != nil {
			return nil, g.refuse(closeForbidden, "Forbidden", err)
		}
		if token != "" {
			g.upstream.Set("Authorization", token)
			g.expireAt(p) // it replaces the upgrade's token, if any
		}
	case "start":
		// Unlike graphql-transport-ws (where the engine closes with 4401),
		// the engine's graphql-ws would run an operation sent before
		// connection_init, while the token may still change.
		if g.protocol == websocket.ProtocolGraphQLWS {
			return nil, g.refuse(closeUnauthorized, "Unauthorized", errors.New("connection_init must come first"))
		}
	}
	return data, nil
}

// refuse ends the connection the way its protocol expects and tells the
// engine it is gone. Nothing else writes to the client before the
// connection is acknowledged, so writing here does not race the engine.
func (g *tokenGate) refuse(code uint16, reason string, err error) error {
	g.rt.log.DebugContext(g.ctx, "websocket refused", "protocol", g.protocol, "err", err)
	if g.protocol == websocket.ProtocolGraphQLWS {
		msg := mustMarshal(map[string]any{"type": "connection_error", "payload": map[string]any{"message": err.Error()}})
		_ = g.WriteBytesToClient(msg)
	}
	_ = g.DisconnectWithReason(websocket.NewCloseReason(code, reason))
	return subscription.ErrTransportClientClosedConnection
}
