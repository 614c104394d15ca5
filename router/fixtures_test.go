package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// The fixture subgraphs below are small federation v2 subgraphs written
// with net/http: they answer the root fields of testdata/products.graphqls
// and the _entities field of testdata/inventory.graphqls from fixtures,
// and record what they received.

type upstreamRequest struct {
	Remote    string // the router's end of the connection
	Header    http.Header
	Query     string
	Variables map[string]json.RawMessage
}

type fixtureSubgraph struct {
	*httptest.Server
	mu       sync.Mutex
	requests []upstreamRequest
	upgrades []http.Header     // headers of websocket upgrades
	inits    []json.RawMessage // connection_init payloads
}

func (f *fixtureSubgraph) routingURL() string { return f.URL + "/graphql" }

func (f *fixtureSubgraph) recorded() []upstreamRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upstreamRequest(nil), f.requests...)
}

func (f *fixtureSubgraph) recordedUpgrades() ([]http.Header, []json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.upgrades...), append([]json.RawMessage(nil), f.inits...)
}

type resolverFunc func(req upstreamRequest) any

func newFixtureSubgraph(t *testing.T, resolve resolverFunc, subscribe func(ctx context.Context, vars map[string]json.RawMessage, send func(any) error)) *fixtureSubgraph {
	t.Helper()
	f := &fixtureSubgraph{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/graphql" {
			http.NotFound(w, r)
			return
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			f.serveWS(w, r, subscribe)
			return
		}
		var body struct {
			Query     string                     `json:"query"`
			Variables map[string]json.RawMessage `json:"variables"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := upstreamRequest{Remote: r.RemoteAddr, Header: r.Header.Clone(), Query: body.Query, Variables: body.Variables}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		resp := resolve(req)
		if resp == nil {
			return // the resolver wrote nothing on purpose (slow subgraph)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(f.Close)
	return f
}

// serveWS speaks graphql-transport-ws only, like our gqlgen subgraphs.
func (f *fixtureSubgraph) serveWS(w http.ResponseWriter, r *http.Request, subscribe func(context.Context, map[string]json.RawMessage, func(any) error)) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if c.Subprotocol() != "graphql-transport-ws" {
		_ = c.Close(4406, "subprotocol not acceptable") // the router's side is what the tests check
		return
	}
	f.mu.Lock()
	f.upgrades = append(f.upgrades, r.Header.Clone())
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var writeMu sync.Mutex
	send := func(v any) error {
		writeMu.Lock()
		defer writeMu.Unlock()
		return wsjson.Write(ctx, c, v)
	}
	for {
		var msg struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := wsjson.Read(ctx, c, &msg); err != nil {
			return
		}
		switch msg.Type {
		case "connection_init":
			f.mu.Lock()
			f.inits = append(f.inits, msg.Payload)
			f.mu.Unlock()
			_ = send(map[string]any{"type": "connection_ack"})
		case "ping":
			_ = send(map[string]any{"type": "pong"})
		case "subscribe":
			var p struct {
				Variables map[string]json.RawMessage `json:"variables"`
			}
			_ = json.Unmarshal(msg.Payload, &p)
			id := msg.ID
			go func() {
				subscribe(ctx, p.Variables, func(data any) error {
					return send(map[string]any{"id": id, "type": "next", "payload": map[string]any{"data": data}})
				})
				if ctx.Err() == nil { // the stream ended on the subgraph's side
					_ = send(map[string]any{"id": id, "type": "complete"})
				}
			}()
		case "complete":
			// One subscription per connection in these tests: stop it.
			cancel()
			return
		}
	}
}

func product(id string) map[string]any {
	return map[string]any{"__typename": "Product", "id": id, "name": "Product " + id, "price": 100}
}

// argument finds the value of a root field's argument in an upstream
// request, e.g. argument(req, "product", "id") for product(id: $b).
func argument(req upstreamRequest, field, arg string, into any) bool {
	m := regexp.MustCompile(`\b` + field + `\(` + arg + `: \$(\w+)\)`).FindStringSubmatch(req.Query)
	return m != nil && json.Unmarshal(req.Variables[m[1]], into) == nil
}

// productsSubgraph resolves Query.products/product/failing,
// Mutation.renameProduct/restock and Subscription.productChanged; the
// engine may ask for several root fields in one request. productChanged
// streams until stopped, except for ids starting with "last", whose stream
// completes after two events.
func productsSubgraph(t *testing.T) *fixtureSubgraph {
	return newFixtureSubgraph(t, resolveProducts, streamProductChanged)
}

// resolveProducts answers the products subgraph's queries and mutations.
func resolveProducts(req upstreamRequest) any {
	data := map[string]any{}
	var errs []any
	if strings.Contains(req.Query, "failing") {
		data["failing"] = nil
		errs = append(errs, map[string]any{
			"message":    "product id must be a UUID",
			"path":       []any{"failing"},
			"locations":  []any{map[string]any{"line": 1, "column": 3}},
			"extensions": map[string]any{"code": "BAD_USER_INPUT", "sql": "SELECT secret"},
		})
	}
	if strings.Contains(req.Query, "renameProduct") {
		data["renameProduct"] = product("p1")
	}
	if strings.Contains(req.Query, "restock") {
		data["restock"] = product("p1")
	}
	if strings.Contains(req.Query, "products") {
		n := 10
		argument(req, "products", "first", &n)
		if n < 0 || n > 1000 { // refused, as the real subgraphs do, rather than allocated
			data["products"] = nil
			errs = append(errs, map[string]any{"message": "first must be between 0 and 1000", "path": []any{"products"}, "extensions": map[string]any{"code": "BAD_USER_INPUT"}})
		} else {
			list := make([]any, n)
			for i := range list {
				list[i] = product(fmt.Sprintf("p%d", i+1))
			}
			data["products"] = list
		}
	}
	var id string
	if argument(req, "product", "id", &id) {
		data["product"] = product(id)
	}
	resp := map[string]any{"data": data}
	if errs != nil {
		resp["errors"] = errs
	}
	return resp
}

// streamProductChanged is the products subgraph's productChanged stream.
func streamProductChanged(ctx context.Context, vars map[string]json.RawMessage, send func(any) error) {
	var id string
	for _, v := range vars {
		_ = json.Unmarshal(v, &id) // the only argument is id
	}
	for i := 1; ; i++ {
		p := product(id)
		p["name"] = fmt.Sprintf("v%d", i)
		if send(map[string]any{"productChanged": p}) != nil || (strings.HasPrefix(id, "last") && i == 2) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// inventorySubgraph resolves Product.stock through _entities. A product
// whose id starts with "gone" gets a NOT_FOUND error instead.
func inventorySubgraph(t *testing.T) *fixtureSubgraph {
	return newFixtureSubgraph(t, func(req upstreamRequest) any {
		if !strings.Contains(req.Query, "_entities") {
			return map[string]any{"errors": []any{map[string]any{"message": "fixture cannot answer " + req.Query}}}
		}
		var reps []struct {
			Typename string `json:"__typename"`
			ID       string `json:"id"`
		}
		_ = json.Unmarshal(req.Variables["representations"], &reps)
		entities := make([]any, len(reps))
		var errs []any
		for i, rep := range reps {
			if strings.HasPrefix(rep.ID, "gone") {
				entities[i] = nil
				errs = append(errs, map[string]any{
					"message":    "no stock record for product " + rep.ID,
					"path":       []any{"_entities", i, "stock"},
					"extensions": map[string]any{"code": "NOT_FOUND"},
				})
				continue
			}
			entities[i] = map[string]any{"__typename": "Product", "stock": len(rep.ID)}
		}
		resp := map[string]any{"data": map[string]any{"_entities": entities}}
		if errs != nil {
			resp["errors"] = errs
		}
		return resp
	}, nil)
}
