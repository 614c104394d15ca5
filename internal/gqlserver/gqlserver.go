// Package gqlserver turns a gqlgen executable schema into the HTTP handler
// every subgraph serves: POST/GET queries, subscriptions over
// graphql-transport-ws, federation introspection, and one error policy —
// expected failures carry extensions.code, anything else is logged and
// answered as INTERNAL_SERVER_ERROR without leaking details.
package gqlserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/onlinemart/mart/internal/httpserver"
)

// Top-level error codes (DESIGN §3).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)

// Error is an expected, client-facing failure with a code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns a client-facing error with the given code.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// KeepAlive is the websocket ping interval; zero means 15s.
	KeepAlive time.Duration
}

// New returns the handler for one subgraph's executable schema.
func New(es graphql.ExecutableSchema, o Options) *handler.Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
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
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// The router and the playground need introspection and _service{sdl}.
	srv.Use(extension.Introspection{})
	srv.SetErrorPresenter(presenter(o.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		o.Logger.ErrorContext(ctx, "panic in resolver", "panic", v, "request_id", httpserver.RequestID(ctx), "stack", string(debug.Stack()))
		return &Error{Code: CodeInternal, Message: "internal error"}
	})
	return srv
}

func presenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var coded *Error
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
				setCode(gerr, CodeBadUserInput)
			}
			return gerr
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &gqlerror.Error{Message: "request cancelled or timed out", Path: graphql.GetPath(ctx),
				Extensions: map[string]any{"code": CodeInternal}}
		}
		logger.ErrorContext(ctx, "resolver error", "err", err, "path", graphql.GetPath(ctx).String(), "request_id", httpserver.RequestID(ctx))
		return &gqlerror.Error{Message: "internal error", Path: graphql.GetPath(ctx),
			Extensions: map[string]any{"code": CodeInternal}}
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
