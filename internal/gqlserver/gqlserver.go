// Package gqlserver turns a gqlgen executable schema into the HTTP handler
// every subgraph serves: POST/GET queries, subscriptions over
// graphql-transport-ws, federation introspection, and one error policy —
// expected failures carry extensions.code, anything else is logged and
// answered as INTERNAL_SERVER_ERROR without leaking details.
package gqlserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/postgres"
)

// Options configure New.
type Options struct {
	Name   string // the service, a label of the operation metrics
	Logger *slog.Logger
	// Access guards root fields by "Type.field". Every Mutation and
	// Subscription field must have a rule, so none is left open by mistake;
	// Query fields without one are public.
	Access auth.Rules
	// KeepAlive is the websocket ping interval; zero means 15s.
	KeepAlive time.Duration
	Limits
}

// New returns the handler for one subgraph's executable schema.
func New(es graphql.ExecutableSchema, o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := checkAccess(es.Schema(), o.Access); err != nil {
		panic(err) // a programming error, caught by any test that starts the service
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	srv := handler.New(es)
	srv.AddTransport(transport.Websocket{
		Implementation:        transportWSOnly{},
		KeepAlivePingInterval: o.KeepAlive,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			return ctx, &p, nil
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	cache := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(o.MaxTokens)
	srv.Use(shapeLimit{maxTokens: o.MaxTokens, cache: cache})
	// The router and the playground need introspection and _service{sdl}.
	srv.Use(extension.Introspection{})
	srv.AroundFields(guard(o.Access))
	srv.AroundResponses(countResponses(o.Name))
	srv.SetErrorPresenter(presenter(o.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", "panic", v, "request_id", httpserver.RequestID(ctx), "stack", string(debug.Stack()))
		return gqlerr.New(gqlerr.Internal, "internal error")
	})
	return limitBody(o.MaxBodyBytes, srv)
}

var operations = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "mart_graphql_responses_total",
	Help: "GraphQL responses (subscription events included) by service, operation type and outcome.",
}, []string{"service", "type", "outcome"})

// countResponses counts each response as ok or error.
func countResponses(service string) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp == nil || !graphql.HasOperationContext(ctx) {
			return resp
		}
		typ := "unknown"
		if op := graphql.GetOperationContext(ctx).Operation; op != nil {
			typ = string(op.Operation)
		}
		outcome := "ok"
		if len(resp.Errors) > 0 {
			outcome = "error"
		}
		operations.WithLabelValues(service, typ, outcome).Inc()
		return resp
	}
}

// guard enforces the access rules of root fields. It runs as field
// middleware because gqlgen's root-field middleware skips subscriptions.
func guard(rules auth.Rules) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc != nil && fc.Field.Field != nil {
			if rule, ok := rules[fc.Object+"."+fc.Field.Name]; ok {
				if err := rule.Check(ctx); err != nil {
					return nil, err
				}
			}
		}
		return next(ctx)
	}
}

// checkAccess makes sure every rule names a root field and every mutation
// and subscription has a rule.
func checkAccess(schema *ast.Schema, rules auth.Rules) error {
	roots := map[string]*ast.Definition{}
	for _, d := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if d != nil {
			roots[d.Name] = d
		}
	}
	var problems []string
	for key := range rules {
		typ, field, _ := strings.Cut(key, ".")
		if d := roots[typ]; d == nil || d.Fields.ForName(field) == nil {
			problems = append(problems, "access rule for unknown root field "+key)
		}
	}
	for _, d := range []*ast.Definition{schema.Mutation, schema.Subscription} {
		if d == nil {
			continue
		}
		for _, f := range d.Fields {
			if _, ok := rules[d.Name+"."+f.Name]; !ok && !strings.HasPrefix(f.Name, "__") {
				problems = append(problems, "no access rule for "+d.Name+"."+f.Name)
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New("gqlserver: " + strings.Join(problems, "; "))
	}
	return nil
}

func presenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var coded *gqlerr.Error
		if errors.As(err, &coded) {
			gerr := graphql.DefaultErrorPresenter(ctx, err)
			gerr.Message = coded.Message
			setCode(gerr, coded.Code)
			return gerr
		}
		var gerr *gqlerror.Error
		if errors.As(err, &gerr) && gerr.Err == nil {
			// gqlgen's own parse, validation and input coercion errors.
			if gerr.Extensions == nil || gerr.Extensions["code"] == nil {
				setCode(gerr, gqlerr.BadUserInput)
			}
			return gerr
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &gqlerror.Error{Message: "request cancelled or timed out", Path: graphql.GetPath(ctx),
				Extensions: map[string]any{"code": gqlerr.Internal}}
		}
		if postgres.Unavailable(err) {
			logger.WarnContext(ctx, "database unavailable", "err", err, "path", graphql.GetPath(ctx).String(), "request_id", httpserver.RequestID(ctx))
			return &gqlerror.Error{Message: "service temporarily unavailable, retry shortly", Path: graphql.GetPath(ctx),
				Extensions: map[string]any{"code": gqlerr.Unavailable}}
		}
		logger.ErrorContext(ctx, "resolver error", "err", err, "path", graphql.GetPath(ctx).String(), "request_id", httpserver.RequestID(ctx))
		return &gqlerror.Error{Message: "internal error", Path: graphql.GetPath(ctx),
			Extensions: map[string]any{"code": gqlerr.Internal}}
	}
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// transportWSOnly accepts websockets only for graphql-transport-ws: the
// router speaks it upstream, and the legacy graphql-ws protocol has no
// place between our own components.
type transportWSOnly struct{}

const transportWS = "graphql-transport-ws"

func (transportWSOnly) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	offered := false
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			offered = offered || strings.TrimSpace(p) == transportWS
		}
	}
	if !offered {
		http.Error(w, "websocket subprotocol graphql-transport-ws required", http.StatusBadRequest)
		return nil, errors.New("client did not offer graphql-transport-ws")
	}
	o.Subprotocols = []string{transportWS}
	return transport.CoderWebsocketImplementation{}.Accept(w, r, o)
}
