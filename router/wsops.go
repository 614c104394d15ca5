package router

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/wundergraph/graphql-go-tools/execution/engine"
	"github.com/wundergraph/graphql-go-tools/execution/graphql"
	"github.com/wundergraph/graphql-go-tools/execution/subscription"
	"github.com/wundergraph/graphql-go-tools/execution/subscription/websocket"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/graphqlerrors"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/operationreport"

	"github.com/onlinemart/mart/internal/httpserver"
)

// wsOperations runs the operations of one websocket connection, each once:
// a subscription streams until its subgraph completes it (the client then
// gets complete) or the client stops it; a query or mutation answers once.
//
// It replaces the engine's subscription.ExecutorEngine, which re-runs a
// subscription a second after it ends (it was made for polled
// subscriptions): a stream the subgraph completed, an order's at DELIVERED
// say, restarted every second and the client never got complete.
type wsOperations struct {
	rt       *Router
	headers  http.Header // the connection's, with the token from connection_init
	client   subscription.TransportClient
	protocol websocket.Protocol

	mu      sync.Mutex
	running map[string]context.CancelFunc
}

func newWSOperations(rt *Router, headers http.Header, client subscription.TransportClient, protocol websocket.Protocol) *wsOperations {
	return &wsOperations{rt: rt, headers: headers, client: client, protocol: protocol, running: map[string]context.CancelFunc{}}
}

// StartOperation starts the operation in payload under the client's id.
func (o *wsOperations) StartOperation(ctx context.Context, id string, payload []byte, events subscription.EventHandler) error {
	if id == "" && o.protocol == websocket.ProtocolGraphQLTransportWS {
		// graphql-transport-ws: an invalid message closes with 4400. The
		// engine would run it under "", out of the client's reach.
		_ = o.client.DisconnectWithReason(websocket.NewCloseReason(closeBadRequest, "subscribe needs an id"))
		return nil
	}
	var op graphql.Request
	if err := graphql.UnmarshalRequest(bytes.NewReader(payload), &op); err != nil {
		events.Emit(subscription.EventTypeOnError, id, nil, err)
		return nil
	}
	// Operations over websockets skip readRequest: the same checks here.
	if _, e := o.rt.parseOperation(op.Query, op.OperationName, op.Variables); e != nil {
		// RequestErrors reach the client as they are, code included.
		errs := make(graphqlerrors.RequestErrors, len(e.errs))
		for i, ge := range e.errs {
			errs[i] = graphqlerrors.RequestError{Message: ge.Message, Extensions: &graphqlerrors.Extensions{Code: ge.Extensions["code"].(string)}}
			for _, l := range ge.Locations {
				errs[i].Locations = append(errs[i].Locations, operationreport.Location{Line: l.Line, Column: l.Column})
			}
		}
		events.Emit(subscription.EventTypeOnError, id, nil, errs)
		return nil
	}
	o.mu.Lock()
	if _, dup := o.running[id]; dup {
		o.mu.Unlock()
		events.Emit(subscription.EventTypeOnDuplicatedSubscriberID, id, nil, subscription.ErrSubscriberIDAlreadyExists)
		return subscription.ErrSubscriberIDAlreadyExists
	}
	if limit := o.rt.opts.WSMaxOperations; limit > 0 && len(o.running) >= limit {
		o.mu.Unlock()
		// This operation fails; the connection and its others go on.
		events.Emit(subscription.EventTypeOnError, id, nil, graphqlerrors.RequestErrors{{
			Message:    fmt.Sprintf("this connection already runs %d operations, the maximum: complete one before starting another", limit),
			Extensions: &graphqlerrors.Extensions{Code: codeTooManyOperations},
		}})
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	o.running[id] = cancel
	o.mu.Unlock()
	go o.run(ctx, id, &op, events)
	return nil
}

func (o *wsOperations) run(ctx context.Context, id string, op *graphql.Request, events subscription.EventHandler) {
	defer o.forget(id)
	w := graphql.NewEngineResultWriter()
	isSubscription := false
	if t, err := op.OperationType(); err == nil && ast.OperationType(t) == ast.OperationTypeSubscription {
		isSubscription = true
		w.SetFlushCallback(func(data []byte) { events.Emit(subscription.EventTypeOnSubscriptionData, id, data, nil) })
	}
	// The header templates read the upstream headers from here, for HTTP
	// fetches and subgraph websocket upgrades alike. Each operation is a
	// span of its own in the connection's trace. That also keeps the
	// engine from sharing one upstream subscription between identical
	// operations of a connection (it keys them by the forwarded headers):
	// a subgraph sends a subscription's first message (an order's current
	// status) once, at its start, so a second subscriber joining later
	// would never get it.
	headers := o.headers.Clone()
	headers.Set("Traceparent", httpserver.ChildTraceparent(headers.Get("Traceparent")))
	o.rt.executions.Add(1)
	err := o.rt.engine.Execute(ctx, op, &w, engine.WithAdditionalHttpHeaders(headers))
	if ctx.Err() != nil {
		return // stopped by the client or the connection's end: nothing more to send
	}
	switch {
	case err != nil:
		events.Emit(subscription.EventTypeOnError, id, nil, err)
	case isSubscription:
		if w.Len() > 0 { // a result that was not flushed, e.g. a planning error
			events.Emit(subscription.EventTypeOnSubscriptionData, id, w.Bytes(), nil)
		}
		events.Emit(subscription.EventTypeOnSubscriptionCompleted, id, nil, nil)
	default:
		events.Emit(subscription.EventTypeOnNonSubscriptionExecutionResult, id, w.Bytes(), nil)
	}
}

func (o *wsOperations) forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cancel, ok := o.running[id]; ok {
		cancel()
		delete(o.running, id)
	}
}

// StopSubscription ends an operation the client completed.
func (o *wsOperations) StopSubscription(id string, events subscription.EventHandler) error {
	o.forget(id)
	events.Emit(subscription.EventTypeOnSubscriptionCompleted, id, nil, nil)
	return nil
}

// TerminateAllSubscriptions ends every operation when the connection ends.
func (o *wsOperations) TerminateAllSubscriptions(events subscription.EventHandler) error {
	o.mu.Lock()
	n := len(o.running)
	for id, cancel := range o.running {
		cancel()
		delete(o.running, id)
	}
	o.mu.Unlock()
	if n > 0 {
		events.Emit(subscription.EventTypeOnConnectionTerminatedByServer, "", []byte("connection terminated by server"), nil)
	}
	return nil
}
