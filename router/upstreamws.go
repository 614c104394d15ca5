package router

import (
	"context"
	"net/http"
	"time"

	"github.com/jensneuse/abstractlogger"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/engine/datasource/graphql_datasource"
)

// upstreamFrameTimeout is how long the engine's subscription client may
// take to read a subgraph frame's header once the socket is readable.
//
// The engine's default is 100 ms, and a header is read in two steps (two
// bytes, then the extended length of any payload over 125 bytes). When the
// deadline passes between them, the engine drops the bytes read, without
// an error or a log line, and the stream is out of step until a quiet
// spell: one event lost. A subgraph whose TCP segments split a frame, or a
// router descheduled for 100 ms on a busy machine, was enough: in the
// fan-out benchmark one subscriber in 1,000–5,000 missed its first message
// (the order's current status). The engine allows a payload 5 s anyway;
// the cost is that a bare websocket ping/pong frame from a subgraph holds a
// poll worker that long, and ours (gqlgen) send pings as protocol messages.
const upstreamFrameTimeout = 5 * time.Second

// upstreamSubscriptions makes the engine's subscription client for each
// subgraph, with upstreamFrameTimeout and the router's logger. Without
// the logger, the client's own errors (such as unknown messages or ping
// timeouts) go nowhere. The engine accepts only its own client type, so
// this factory can only set the client's options.
type upstreamSubscriptions struct{ log abstractlogger.Logger }

// NewSubscriptionClient implements graphql_datasource.GraphQLSubscriptionClientFactory.
//
//nolint:revive // context-as-argument: the engine's interface fixes this signature, context third.
func (f upstreamSubscriptions) NewSubscriptionClient(httpClient, streamingClient *http.Client, engineCtx context.Context, options ...graphql_datasource.Options) graphql_datasource.GraphQLSubscriptionClient {
	options = append([]graphql_datasource.Options{
		graphql_datasource.WithLogger(f.log),
		graphql_datasource.WithFrameTimeout(upstreamFrameTimeout),
	}, options...)
	return graphql_datasource.NewGraphQLSubscriptionClient(httpClient, streamingClient, engineCtx, options...)
}
