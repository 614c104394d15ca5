package router

import (
	"strings"
	"time"

	"github.com/onlinemart/mart/internal/envvar"
)

// Config holds the router's settings. Zero values select the Default…
// values; a negative limit disables that limit.
type Config struct {
	Addr             string // listen address (declared with the targets' addresses)
	SupergraphConfig string // the supergraph.yaml to compose
	// RoutingURLs override the supergraph config's routing URLs by subgraph
	// name.
	RoutingURLs   map[string]string
	MaxBodyBytes  int64 // bounds a request body and a websocket message
	MaxDepth      int
	MaxAliases    int
	MaxRootFields int
	// MaxTokens bounds the lexical tokens of a document, counted before it
	// is parsed; MaxFields the fields of the operation with its fragments
	// expanded; MaxDuplicates the fields that repeat a sibling's response
	// name (each costs the engine a comparison with every sibling).
	MaxTokens     int
	MaxFields     int
	MaxDuplicates int
	// WSMaxOperations bounds the operations running at once on one
	// websocket; WSMaxConns the websockets open at once from one client
	// address (see TrustedProxies).
	WSMaxOperations int
	WSMaxConns      int
	// TrustedProxies are the addresses or CIDRs of proxies (Kong) whose
	// X-Forwarded-For names the client; other peers are the client.
	TrustedProxies []string
	RequestTimeout time.Duration
	// SubgraphConns caps the HTTP requests in flight to one subgraph; the
	// rest wait in the router. Negative: no cap. Subscriptions' websockets
	// are not counted.
	SubgraphConns int
	// Playground serves the GraphiQL playground (bundled, works offline) at
	// GET / and, to browsers asking for HTML, at GET /graphql.
	Playground bool
	// Introspection allows __schema and __type queries; off, they are
	// refused with GRAPHQL_VALIDATION_FAILED (__typename stays allowed).
	Introspection bool
}

// Vars declares the router's settings; RoutingVar adds one per subgraph,
// and the composition root declares its address with every target's.
func (c *Config) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.String(&c.SupergraphConfig, "MART_SUPERGRAPH_CONFIG", "supergraph.yaml", "file listing the subgraphs the router composes"),
		envvar.Bytes(&c.MaxBodyBytes, "MART_MAX_BODY_BYTES", "1048576", "router: largest accepted request body and websocket message"),
		envvar.Int(&c.MaxDepth, "MART_MAX_DEPTH", "15", "router: deepest accepted selection nesting"),
		envvar.Int(&c.MaxAliases, "MART_MAX_ALIASES", "30", "router: most aliases in one operation"),
		envvar.Int(&c.MaxRootFields, "MART_MAX_ROOT_FIELDS", "20", "router: most root fields in one operation"),
		envvar.Limit(&c.MaxTokens, "MART_MAX_TOKENS", "15000", "router: most lexical tokens in one GraphQL document; -1: no limit"),
		envvar.Limit(&c.MaxFields, "MART_MAX_FIELDS", "2000", "router: most fields in one operation once its fragments are expanded; -1: no limit"),
		envvar.Limit(&c.MaxDuplicates, "MART_MAX_DUPLICATE_FIELDS", "500", "router: most fields that repeat a sibling's response name (alias or name) in one operation; -1: no limit"),
		envvar.Limit(&c.WSMaxOperations, "MART_WS_MAX_OPERATIONS", "100", "router: most operations running at once on one websocket connection; -1: no limit"),
		envvar.Limit(&c.WSMaxConns, "MART_WS_MAX_CONNS_PER_CLIENT", "100", "router: most websocket connections open at once from one client address; -1: no limit"),
		envvar.List(&c.TrustedProxies, "MART_TRUSTED_PROXIES", "", "router: comma list of proxy addresses or CIDRs (Kong) whose X-Forwarded-For names the client; empty: the peer address is the client"),
		envvar.Duration(&c.RequestTimeout, "MART_REQUEST_TIMEOUT", "30s", "router: time limit for one request, subgraph calls included"),
		envvar.Limit(&c.SubgraphConns, "MART_SUBGRAPH_CONNS", "32", "router: most HTTP requests in flight to one subgraph (more wait in the router); -1: no limit"),
		envvar.Bool(&c.Playground, "MART_PLAYGROUND", "true", "router: serve the GraphiQL playground at / (and at /graphql to browsers); false: 404"),
		envvar.Bool(&c.Introspection, "MART_INTROSPECTION", "true", "router: answer __schema and __type queries; false refuses them (GRAPHQL_VALIDATION_FAILED)"),
	}
}

// RoutingVar declares the variable that overrides subgraph's routing URL.
func (c *Config) RoutingVar(subgraph string) envvar.Var {
	return envvar.Func("MART_"+strings.ToUpper(subgraph)+"_ROUTING_URL", "",
		"router: overrides the "+subgraph+" routing URL from the supergraph config", func(s string) error {
			if c.RoutingURLs == nil {
				c.RoutingURLs = map[string]string{}
			}
			if s != "" {
				c.RoutingURLs[subgraph] = s
			}
			return nil
		})
}
