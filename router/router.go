// Package router is the federation router: it composes the subgraph schemas
// into one supergraph and plans and executes client operations across the
// subgraphs with WunderGraph's graphql-go-tools engine, over HTTP and
// websockets.
package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jensneuse/abstractlogger"
	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/router/playground"
	nodev1 "github.com/wundergraph/cosmo/router/gen/proto/wg/cosmo/node/v1"
	"github.com/wundergraph/graphql-go-tools/execution/engine"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/engine/resolve"
)

// Defaults applied to zero Options fields.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxDepth        = 15
	DefaultMaxAliases      = 30
	DefaultMaxRootFields   = 20
	DefaultMaxTokens       = 15_000
	DefaultMaxFields       = 2_000
	DefaultMaxDuplicates   = 500
	DefaultWSMaxOperations = 100
	DefaultWSMaxConns      = 100
	DefaultRequestTimeout  = 30 * time.Second
	DefaultSubgraphConns   = 32
)

// Options configure a Router. Zero values select the defaults above; a
// negative limit disables that limit.
type Options struct {
	Config
	Subgraphs []Subgraph
	// SubgraphIdleTimeout is how long the subgraphs keep an idle
	// connection (MART_HTTP_IDLE_TIMEOUT): the router drops its own idle
	// connections in half that time, so that it never sends a request on
	// one a subgraph is closing (a POST is not retried). Zero: 120s.
	SubgraphIdleTimeout time.Duration
	Logger              *slog.Logger

	// Verifier checks every bearer token before planning. Nil forwards
	// tokens unchecked: only for tests of unrelated behaviour.
	Verifier *auth.Verifier
	// JWKSURL is the user service's key set, republished at
	// /.well-known/jwks.json; empty answers 404 there.
	JWKSURL string
}

func (o *Options) setDefaults() {
	orDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&o.MaxDepth, DefaultMaxDepth)
	orDefault(&o.MaxAliases, DefaultMaxAliases)
	orDefault(&o.MaxRootFields, DefaultMaxRootFields)
	orDefault(&o.MaxTokens, DefaultMaxTokens)
	orDefault(&o.MaxFields, DefaultMaxFields)
	orDefault(&o.MaxDuplicates, DefaultMaxDuplicates)
	orDefault(&o.WSMaxOperations, DefaultWSMaxOperations)
	orDefault(&o.WSMaxConns, DefaultWSMaxConns)
	orDefault(&o.SubgraphConns, DefaultSubgraphConns)
	orDefault(&o.RequestTimeout, DefaultRequestTimeout)
	orDefault(&o.SubgraphIdleTimeout, 120*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// orDefault sets a zero option to its default.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// forwardedHeaders are copied from the client's request onto every subgraph
// request, HTTP fetches and websocket upgrades alike.
var forwardedHeaders = []string{"Authorization", "Traceparent", "X-Request-Id"}

// Router serves the supergraph at /graphql and the token keys at
// /.well-known/jwks.json. It is an http.Handler, so httptest.NewServer(r)
// runs one on an ephemeral port.
type Router struct {
	opts       Options
	log        *slog.Logger
	engineLog  abstractlogger.Logger
	engine     *engine.ExecutionEngine
	jwksClient *http.Client
	playground *playground.Handler // nil: Options.Playground off

	stopEngine context.CancelFunc // ends the engine's subscriptions and pollers

	proxies proxies

	mu      sync.Mutex
	closed  bool
	wsConns map[net.Conn]struct{}
	// wsClients counts the open websockets by client address.
	wsClients map[string]int
	wsDone    sync.WaitGroup
	// ints drives the 32-bit check of Int variables.
	ints intInputs
	// executions counts the operations handed to the engine (planned and
	// run): the tests' proof that a refused document never got there.
	executions atomic.Int64
}

// New composes the supergraph from the subgraph schema files and builds the
// execution engine. Subgraphs are not contacted until operations arrive.
// ctx bounds startup only; the router runs until Close.
func New(ctx context.Context, opts Options) (*Router, error) {
	opts.setDefaults()
	trusted, err := parseProxies(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if opts.Verifier == nil {
		opts.Logger.Warn("no token verifier; bearer tokens reach the subgraphs unchecked")
	}
	rc, err := composeRouterConfig(ctx, opts.Subgraphs)
	if err != nil {
		return nil, err
	}
	if err := prepareDataSources(rc); err != nil {
		return nil, err
	}

	engineCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	client := upstreamClient(opts.SubgraphConns, opts.RequestTimeout, opts.SubgraphIdleTimeout/2)
	engineLog := engineLogger(opts.Logger)
	factory := engine.NewFederationEngineConfigFactory(engineCtx, nil,
		engine.WithFederationHttpClient(client),
		engine.WithFederationStreamingClient(client),
		engine.WithFederationSubscriptionClientFactory(upstreamSubscriptions{log: engineLog}),
	)
	cfg, err := factory.BuildEngineConfigurationWithRouterConfig(rc)
	if err != nil {
		stop()
		return nil, fmt.Errorf("build engine configuration: %w", err)
	}
	eng, err := engine.NewExecutionEngine(engineCtx, engineLog, cfg, resolve.ResolverOptions{
		MaxConcurrency: 1024,
		// Subgraph errors reach clients as the subgraph wrote them (message,
		// path, extensions.code); only the code survives from extensions so
		// nothing internal leaks, and locations refer to the subgraph's
		// query, not the client's, so they are dropped.
		PropagateSubgraphErrors:            true,
		SubgraphErrorPropagationMode:       resolve.SubgraphErrorPropagationModePassThrough,
		RewriteSubgraphErrorPaths:          true,
		OmitSubgraphErrorLocations:         true,
		AllowedErrorExtensionFields:        []string{"code"},
		AttachServiceNameToErrorExtensions: true,
		DefaultErrorExtensionCode:          codeInternal,
		MaxSubscriptionFetchTimeout:        opts.RequestTimeout,
		// The engine calls this without a nil check when a subscription's
		// subgraph stream cannot start: left unset, that crashes the router.
		AsyncErrorWriter: subscriptionErrorWriter{log: opts.Logger},
		// A null that breaks a non-null field is a consequence of an error
		// already reported (subgraph down, entity not found); report it in
		// extensions.valueCompletion, as Apollo's router does, rather than
		// as a second, code-less error.
		ResolvableOptions: resolve.ResolvableOptions{ApolloCompatibilityValueCompletionInExtensions: true},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("create engine: %w", err)
	}
	ints := newIntInputs(cfg.Schema().Document())
	var pg *playground.Handler
	if opts.Playground {
		if pg, err = playground.New(); err != nil {
			stop()
			return nil, fmt.Errorf("playground: %w", err)
		}
	}
	return &Router{
		playground: pg,
		opts:       opts,
		log:        opts.Logger,
		engineLog:  engineLog,
		engine:     eng,
		jwksClient: &http.Client{Timeout: 5 * time.Second},
		stopEngine: stop,
		wsConns:    map[net.Conn]struct{}{},
		wsClients:  map[string]int{},
		proxies:    trusted,
		ints:       ints,
	}, nil
}

// Handler returns the router as an http.Handler.
func (rt *Router) Handler() http.Handler { return rt }

// Close stops all subscriptions and closes client websockets. In-flight HTTP
// requests are the HTTP server's to drain (http.Server.Shutdown).
func (rt *Router) Close() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	for c := range rt.wsConns {
		_ = c.Close() // ends the connection's read loop, which terminates its subscriptions
	}
	rt.mu.Unlock()
	rt.stopEngine()
	rt.wsDone.Wait()
	return nil
}

// subscriptionErrorWriter reports a subscription whose subgraph stream could
// not start: the subgraph is down or refused the upgrade (it verifies the
// token too).
type subscriptionErrorWriter struct{ log *slog.Logger }

func (e subscriptionErrorWriter) WriteError(ctx *resolve.Context, err error, _ *resolve.GraphQLResponse, w io.Writer) {
	e.log.WarnContext(ctx.Context(), "subscription could not start", "err", err)
	_, _ = w.Write(mustMarshal(engineResponse{Errors: []gqlError{newError(codeSubgraphUnavailable, "the subgraph serving this subscription is unavailable")}}))
	if f, ok := w.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// prepareDataSources names each data source after its subgraph, so engine
// messages say "product" rather than an index, and adds the header templates
// that forward client headers on fetches and on websocket upgrades.
func prepareDataSources(rc *nodev1.RouterConfig) error {
	names := make(map[string]string, len(rc.GetSubgraphs()))
	for _, s := range rc.GetSubgraphs() {
		names[s.GetId()] = s.GetName()
	}
	for _, ds := range rc.GetEngineConfig().GetDatasourceConfigurations() {
		name, ok := names[ds.GetId()]
		if !ok {
			return fmt.Errorf("composed data source %q has no subgraph", ds.GetId())
		}
		ds.Id = name
		gql := ds.GetCustomGraphql()
		if gql == nil || gql.GetFetch() == nil {
			return fmt.Errorf("subgraph %q has no fetch configuration", name)
		}
		if gql.Fetch.Header == nil {
			gql.Fetch.Header = map[string]*nodev1.HTTPHeader{}
		}
		for _, h := range forwardedHeaders {
			gql.Fetch.Header[h] = &nodev1.HTTPHeader{Values: []*nodev1.ConfigurationVariable{{
				Kind:                  nodev1.ConfigurationVariableKind_STATIC_CONFIGURATION_VARIABLE,
				StaticVariableContent: "{{ .request.headers." + h + " }}",
			}}}
		}
	}
	return nil
}

// upstreamClient is the router's client of the subgraphs, for fetches and
// subscription upgrades. It has no overall timeout: fetches are bounded by
// their request's context (shared queries by timeout, see dedupTransport),
// and a timeout would cut long-lived websockets. HTTP requests use at most
// maxConns connections per subgraph (<0: any number), so a burst of clients
// queues in the router instead of landing on a subgraph all at once.
// Websocket upgrades use a transport of their own: an upgraded connection
// stays counted until it closes and would starve requests of the limit.
func upstreamClient(maxConns int, timeout, idle time.Duration) *http.Client {
	transport := func(maxConns int) *http.Transport {
		return &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			MaxConnsPerHost:     max(maxConns, 0),
			IdleConnTimeout:     min(idle, 90*time.Second),
			ForceAttemptHTTP2:   false, // websocket upgrades need HTTP/1.1
		}
	}
	ws := transport(0)
	// An upgrade has no request deadline (the stream may last hours), so
	// a subgraph that accepts the connection and never answers the
	// upgrade would leave the subscription hanging without an error.
	ws.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: newDedupTransport(&upstreamTransport{http: transport(maxConns), ws: ws}, timeout)}
}

// upstreamTransport pins subgraph websockets to graphql-transport-ws (the
// engine would also offer legacy graphql-ws, which our gqlgen subgraphs do
// not speak) and drops forwarded headers that rendered empty because the
// client did not send them.
type upstreamTransport struct{ http, ws http.RoundTripper }

const subprotocolTransportWS = "graphql-transport-ws"

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Upgrade") != "websocket" {
		return t.http.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Sec-WebSocket-Protocol", subprotocolTransportWS)
	for _, h := range forwardedHeaders {
		if req.Header.Get(h) == "" {
			req.Header.Del(h)
		}
	}
	return t.ws.RoundTrip(req)
}
