package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/wundergraph/graphql-go-tools/execution/subscription"
	"github.com/wundergraph/graphql-go-tools/execution/subscription/websocket"
)

// Client-facing reasons for refusing a token; the details are only logged.
var (
	errNotBearer         = errors.New("Authorization must be a Bearer token")
	errManyAuthorization = errors.New("send at most one Authorization header")
)

// authenticate verifies the bearer token among the Authorization values, if
// any: no token passes (subgraphs decide per field), a bad one is refused.
// Empty values count as none, as clients often send one when signed out.
func (rt *Router) authenticate(ctx context.Context, values []string) error {
	var present []string
	for _, v := range values {
		if v != "" {
			present = append(present, v)
		}
	}
	if len(present) == 0 || rt.opts.Verifier == nil {
		return nil
	}
	// Subgraphs would receive several values joined by commas.
	if len(present) > 1 {
		return errManyAuthorization
	}
	token, ok := auth.BearerToken(present[0])
	if !ok {
		return errNotBearer
	}
	if _, err := rt.opts.Verifier.Verify(ctx, token); err != nil {
		rt.log.DebugContext(ctx, "token refused", "error", err)
		return auth.ErrInvalidToken
	}
	return nil
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
		if err := g.rt.authenticate(g.ctx, []string{token}); err != nil {
			return nil, g.refuse(closeForbidden, "Forbidden", err)
		}
		if token != "" {
			g.upstream.Set("Authorization", token)
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
	g.rt.log.DebugContext(g.ctx, "websocket refused", "protocol", g.protocol, "error", err)
	if g.protocol == websocket.ProtocolGraphQLWS {
		msg := mustMarshal(map[string]any{"type": "connection_error", "payload": map[string]any{"message": err.Error()}})
		_ = g.TransportClient.WriteBytesToClient(msg)
	}
	_ = g.TransportClient.DisconnectWithReason(websocket.NewCloseReason(code, reason))
	return subscription.ErrTransportClientClosedConnection
}
