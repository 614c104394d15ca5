package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
)

type testGraph struct {
	products  *fixtureSubgraph
	inventory *fixtureSubgraph
	router    *Router
	server    *httptest.Server
}

// startGraph runs the router in front of the fixture subgraphs; change
// tweaks the options (limits, timeouts) before the router starts.
func startGraph(t *testing.T, change func(*Options)) *testGraph {
	t.Helper()
	g := &testGraph{products: productsSubgraph(t), inventory: inventorySubgraph(t)}
	opts := Options{Subgraphs: []Subgraph{
		{Name: "products", RoutingURL: g.products.routingURL(), SchemaFile: "testdata/products.graphqls"},
		{Name: "inventory", RoutingURL: g.inventory.routingURL(), SchemaFile: "testdata/inventory.graphqls"},
	}}
	if change != nil {
		change(&opts)
	}
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	g.router = r
	g.server = httptest.NewServer(r)
	t.Cleanup(func() {
		g.server.Close()
		_ = r.Close()
	})
	return g
}

type response struct {
	status int
	body   []byte
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Locations  []any          `json:"locations"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// firstCode is the extensions.code of the first error, if any.
func (r *response) firstCode() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// closeRouter closes a router that a test built itself.
func closeRouter(t *testing.T, r *Router) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Errorf("close router: %v", err)
	}
}

func do(t *testing.T, req *http.Request) *response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := &response{status: res.StatusCode}
	out.body, _ = io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %s", ct, out.body)
	}
	if err := json.Unmarshal(out.body, out); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, out.body)
	}
	return out
}

func post(t *testing.T, srv *httptest.Server, body string, header ...string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/graphql", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func postQuery(t *testing.T, srv *httptest.Server, query string, variables map[string]any, header ...string) *response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	return post(t, srv, string(body), header...)
}

func get(t *testing.T, srv *httptest.Server, params url.Values) *response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/graphql?"+params.Encode(), nil)
	return do(t, req)
}

func TestQueryAcrossSubgraphsBatchesEntitiesAndForwardsHeaders(t *testing.T) {
	g := startGraph(t, nil)
	res := postQuery(t, g.server, `query($n: Int) { products(first: $n) { id name stock } }`, map[string]any{"n": 50},
		"Authorization", "Bearer t0ken",
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"X-Request-Id", "req-42")
	if res.status != http.StatusOK || len(res.Errors) > 0 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	list := res.Data["products"].([]any)
	if len(list) != 50 {
		t.Fatalf("got %d products", len(list))
	}
	last := list[49].(map[string]any)
	if last["id"] != "p50" || last["name"] != "Product p50" || last["stock"] != float64(3) {
		t.Fatalf("last product %v", last)
	}

	calls := g.inventory.recorded()
	if len(calls) != 1 {
		t.Fatalf("inventory got %d requests, want one batched _entities request", len(calls))
	}
	var reps []any
	_ = json.Unmarshal(calls[0].Variables["representations"], &reps)
	if !strings.Contains(calls[0].Query, "_entities") || len(reps) != 50 {
		t.Fatalf("inventory request has %d representations: %s", len(reps), calls[0].Query)
	}
	for name, sg := range map[string]*fixtureSubgraph{"products": g.products, "inventory": g.inventory} {
		h := sg.recorded()[0].Header
		if h.Get("Authorization") != "Bearer t0ken" || h.Get("Traceparent") == "" || h.Get("X-Request-Id") != "req-42" {
			t.Errorf("%s did not receive the forwarded headers: %v", name, h)
		}
	}
}

func TestNoForwardedHeadersWhenClientSendsNone(t *testing.T) {
	g := startGraph(t, nil)
	res := postQuery(t, g.server, `{ product(id: "p1") { name } }`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	h := g.products.recorded()[0].Header
	if _, ok := h["Authorization"]; ok {
		t.Errorf("empty Authorization forwarded: %v", h)
	}
}

func TestGETQueryAndGETMutationRejected(t *testing.T) {
	g := startGraph(t, nil)
	res := get(t, g.server, url.Values{"query": {`query P($id: ID!) { product(id: $id) { id name } }`}, "variables": {`{"id":"p7"}`}})
	if res.status != http.StatusOK || res.Data["product"].(map[string]any)["id"] != "p7" {
		t.Fatalf("GET query: %d %s", res.status, res.body)
	}
	res = get(t, g.server, url.Values{"query": {`mutation { renameProduct(id: "p1", name: "x") { id } }`}})
	if res.status != http.StatusMethodNotAllowed || res.firstCode() != codeMethodNotAllowed {
		t.Fatalf("GET mutation: %d %s", res.status, res.body)
	}
	if n := len(g.products.recorded()); n != 1 {
		t.Fatalf("the mutation reached the subgraph (%d requests)", n)
	}
	res = postQuery(t, g.server, `mutation { renameProduct(id: "p1", name: "x") { id } }`, nil)
	if res.status != http.StatusOK || res.Data["renameProduct"] == nil {
		t.Fatalf("POST mutation: %d %s", res.status, res.body)
	}
}

func TestBadRequests(t *testing.T) {
	g := startGraph(t, func(o *Options) { o.MaxBodyBytes = 512 })
	tests := []struct {
		name, method, contentType, body string
		status                          int
		code, message                   string
	}{
		{"malformed JSON", "POST", "application/json", `{"query": `, 400, codeBadRequest, "not a valid JSON"},
		{"not an object", "POST", "application/json", `"{ products { id } }"`, 400, codeBadRequest, "not a valid JSON"},
		{"missing query", "POST", "application/json", `{"variables": {}}`, 400, codeBadRequest, "no query"},
		{"variables not an object", "POST", "application/json", `{"query": "{ products { id } }", "variables": [1]}`, 400, codeBadRequest, "variables"},
		{"batch", "POST", "application/json", `[{"query": "{ products { id } }"}]`, 400, codeBadRequest, "batched"},
		{"too large", "POST", "application/json", `{"query": "{ products { id } }", "x": "` + strings.Repeat("a", 600) + `"}`, 413, codePayloadTooLarge, "512 bytes"},
		{"form post", "POST", "application/x-www-form-urlencoded", `query=x`, 415, codeUnsupportedMedia, "application/json"},
		{"wrong method", "PUT", "application/json", `{"query": "{ products { id } }"}`, 405, codeMethodNotAllowed, "PUT"},
		{"parse error", "POST", "application/json", `{"query": "{ products { id "}`, 400, codeParseFailed, ""},
		{"unknown field", "POST", "application/json", `{"query": "{ products { id colour } }"}`, 400, codeValidationFailed, "colour"},
		{"wrong argument type", "POST", "application/json", `{"query": "{ products(first: \"ten\") { id } }"}`, 400, codeValidationFailed, "Int"},
		{"missing variable", "POST", "application/json", `{"query": "query($id: ID!) { product(id: $id) { id } }"}`, 400, codeValidationFailed, "$id"},
		{"subscription over HTTP", "POST", "application/json", `{"query": "subscription { productChanged(id: \"p1\") { id } }"}`, 400, codeBadRequest, "websocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, g.server.URL+"/graphql", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			res := do(t, req)
			if res.status != tt.status || len(res.Errors) == 0 || res.firstCode() != tt.code || !strings.Contains(res.Errors[0].Message, tt.message) {
				t.Fatalf("got %d %s, want %d %s containing %q", res.status, res.body, tt.status, tt.code, tt.message)
			}
		})
	}
	if n := len(g.products.recorded()); n != 0 {
		t.Fatalf("bad requests reached the subgraph %d times", n)
	}
}

func TestQueryLimits(t *testing.T) {
	g := startGraph(t, func(o *Options) { o.MaxDepth = 2; o.MaxAliases = 2; o.MaxRootFields = 2 })
	// Depth 2 through fragments, 2 aliases, 2 root fields: all within limits.
	res := postQuery(t, g.server, `{ ...Q } fragment Q on Query { a: products { ...P } b: product(id: "1") { id } } fragment P on Product { id ... on Product { name } }`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("query within limits: %d %s", res.status, res.body)
	}

	strict := startGraph(t, func(o *Options) { o.MaxDepth = 1 })
	tests := []struct {
		name   string
		g      *testGraph
		query  string
		detail string
	}{
		{"depth through fragments", strict, `{ ...Q } fragment Q on Query { products { ...P } } fragment P on Product { id }`, "depth 2 exceeds the maximum depth of 1"},
		{"aliases", g, `{ a: product(id: "1") { x: id y: name } }`, "3 aliases, more than the maximum of 2"},
		{"root fields", g, `{ product(id: "1") { id } products { id } failing { id } }`, "3 root fields, more than the maximum of 2"},
	}
	before := len(g.products.recorded())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := postQuery(t, tt.g.server, tt.query, nil)
			if res.status != http.StatusBadRequest || res.firstCode() != codeQueryLimitExceeded || !strings.Contains(res.Errors[0].Message, tt.detail) {
				t.Fatalf("got %d %s, want %q", res.status, res.body, tt.detail)
			}
		})
	}
	if n := len(strict.products.recorded()) + len(g.products.recorded()) - before; n != 0 {
		t.Fatalf("queries over the limits reached the subgraph %d times", n)
	}
}

func TestSubgraphDownIsReportedWithoutLeakingItsAddress(t *testing.T) {
	g := startGraph(t, nil)
	addr := g.inventory.Listener.Addr().String()
	g.inventory.Close()

	res := postQuery(t, g.server, `{ product(id: "p1") { id name stock } }`, nil)
	if res.status != http.StatusOK || len(res.Errors) != 1 || res.firstCode() != codeSubgraphUnavailable {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if !strings.Contains(res.Errors[0].Message, "inventory") || res.Errors[0].Extensions["serviceName"] != "inventory" {
		t.Fatalf("error does not name the subgraph: %s", res.body)
	}
	if _, ok := res.Data["product"]; !ok || res.Data["product"] != nil {
		t.Fatalf("want data.product null, got %s", res.body)
	}
	if bytes.Contains(res.body, []byte(addr)) || bytes.Contains(res.body, []byte("127.0.0.1")) {
		t.Fatalf("response leaks the subgraph address: %s", res.body)
	}
}

func TestSubgraphErrorsPassThrough(t *testing.T) {
	g := startGraph(t, nil)
	res := postQuery(t, g.server, `{ failing { id } }`, nil)
	if res.status != http.StatusOK || len(res.Errors) != 1 {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	e := res.Errors[0]
	if e.Message != "product id must be a UUID" || res.firstCode() != "BAD_USER_INPUT" || len(e.Path) != 1 || e.Path[0] != "failing" {
		t.Fatalf("subgraph error changed on the way: %s", res.body)
	}
	if _, ok := e.Extensions["sql"]; ok || e.Locations != nil {
		t.Fatalf("internal extension fields or subgraph locations leaked: %s", res.body)
	}

	// An entity error: its _entities path becomes the client's path.
	res = postQuery(t, g.server, `{ product(id: "gone1") { id stock } }`, nil)
	if len(res.Errors) != 1 || res.firstCode() != "NOT_FOUND" || res.Errors[0].Message != "no stock record for product gone1" {
		t.Fatalf("entity error: %s", res.body)
	}
	if p := res.Errors[0].Path; len(p) == 0 || p[0] != "product" {
		t.Fatalf("entity error path %v: %s", p, res.body)
	}
}

func TestRequestTimeout(t *testing.T) {
	slow := newFixtureSubgraph(t, func(upstreamRequest) any {
		time.Sleep(2 * time.Second)
		return nil
	}, nil)
	r, err := New(context.Background(), Options{
		Subgraphs: []Subgraph{{Name: "products", RoutingURL: slow.routingURL(), SchemaFile: "testdata/products.graphqls"}},
		Config:    Config{RequestTimeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRouter(t, r)
	srv := httptest.NewServer(r)
	defer srv.Close()

	start := time.Now()
	res := postQuery(t, srv, `{ products { id } }`, nil)
	if res.status != http.StatusGatewayTimeout || res.firstCode() != codeGatewayTimeout {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("timeout answered after %s", d)
	}
}

func TestRequestTimeoutKeepsDataThatArrived(t *testing.T) {
	products := productsSubgraph(t)
	slowInventory := newFixtureSubgraph(t, func(upstreamRequest) any {
		time.Sleep(2 * time.Second)
		return nil
	}, nil)
	r, err := New(context.Background(), Options{
		Subgraphs: []Subgraph{
			{Name: "products", RoutingURL: products.routingURL(), SchemaFile: "testdata/products.graphqls"},
			{Name: "inventory", RoutingURL: slowInventory.routingURL(), SchemaFile: "testdata/inventory.graphqls"},
		},
		Config: Config{RequestTimeout: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRouter(t, r)
	srv := httptest.NewServer(r)
	defer srv.Close()

	res := postQuery(t, srv, `{ products(first: 1) { id } product(id: "p1") { stock } }`, nil)
	if res.status != http.StatusOK || res.firstCode() != codeGatewayTimeout || !strings.Contains(res.Errors[0].Message, "inventory") {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if res.Data["products"] == nil || res.Data["product"] != nil {
		t.Fatalf("want products and a null product, got %s", res.body)
	}
}

func TestPanicBecomesInternalServerError(t *testing.T) {
	// A router without an engine panics on execution.
	r := &Router{opts: Options{}, log: nil}
	r.opts.setDefaults()
	r.log = r.opts.Logger
	srv := httptest.NewServer(r)
	defer srv.Close()
	res := postQuery(t, srv, `{ products { id } }`, nil)
	if res.status != http.StatusInternalServerError || res.firstCode() != codeInternal || res.Errors[0].Message != "internal server error" {
		t.Fatalf("got %d %s", res.status, res.body)
	}
}

func TestUnknownPath(t *testing.T) {
	g := startGraph(t, nil)
	req, _ := http.NewRequest(http.MethodGet, g.server.URL+"/nope", nil)
	if res := do(t, req); res.status != http.StatusNotFound || res.firstCode() != codeNotFound {
		t.Fatalf("got %d %s", res.status, res.body)
	}
}

// The router keeps at most SubgraphConns requests in flight to a subgraph;
// the others wait their turn and all are answered. Subscriptions are not
// counted: one open stream must not hold back requests.
func TestSubgraphConnectionLimit(t *testing.T) {
	var inFlight, most atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"product":{"id":"p1","name":"Product p1"}}}`)
	}))
	defer slow.Close()
	g := startGraph(t, func(o *Options) {
		o.SubgraphConns = 2
		o.Subgraphs[0].RoutingURL = slow.URL + "/graphql"
	})
	var wg sync.WaitGroup
	for i := range 8 { // different queries: identical ones would be shared
		wg.Go(func() {
			q := fmt.Sprintf(`{ product(id: "p%d") { id name } }`, i)
			if res := postQuery(t, g.server, q, nil); res.status != http.StatusOK || len(res.Errors) > 0 {
				t.Errorf("got %d %s", res.status, res.body)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Errorf("the subgraph saw up to %d requests at once, want 2", m)
	}
}

func TestSubscriptionsDoNotCountAgainstTheConnectionLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, func(o *Options) { o.SubgraphConns = 1 })
	for _, id := range []string{"1", "2"} {
		c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
		sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p` + id + `") { id } }`})
		if err := wsjson.Write(ctx, c, wsMessage{ID: id, Type: "subscribe", Payload: sub}); err != nil {
			t.Fatal(err)
		}
		readUntil(ctx, t, c, "next")
	}
	if res := postQuery(t, g.server, `{ product(id: "p1") { id } }`, nil); res.status != http.StatusOK || len(res.Errors) > 0 {
		t.Fatalf("a query with two streams open: %d %s", res.status, res.body)
	}
}

// Identical queries in flight together reach the subgraph once and every
// client gets the answer; mutations, and queries of different callers, are
// never shared.
func TestIdenticalQueriesShareOneSubgraphRequest(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	auths := map[string]int{}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mu.Lock()
		auths[r.Header.Get("Authorization")]++
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		time.Sleep(150 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(body), "renameProduct") {
			_, _ = io.WriteString(w, `{"data":{"renameProduct":{"id":"p1","name":"renamed"}}}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":{"product":{"id":"p1","name":"Product p1"}}}`)
	}))
	defer slow.Close()
	g := startGraph(t, func(o *Options) { o.Subgraphs[0].RoutingURL = slow.URL + "/graphql" })

	run := func(n int, query string, header func(i int) []string) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				res := postQuery(t, g.server, query, nil, header(i)...)
				if res.status != http.StatusOK || len(res.Errors) > 0 || len(res.Data) == 0 {
					t.Errorf("got %d %s", res.status, res.body)
				}
			})
		}
		wg.Wait()
	}
	same := func(int) []string { return []string{"Authorization", "Bearer same"} }
	run(8, `{ product(id: "p1") { id name } }`, same)
	if n := calls.Load(); n > 2 {
		t.Errorf("8 identical queries cost the subgraph %d requests", n)
	}

	calls.Store(0)
	run(4, `mutation { renameProduct(id: "p1", name: "renamed") { id name } }`, same)
	if n := calls.Load(); n != 4 {
		t.Errorf("4 mutations reached the subgraph %d times, want 4", n)
	}

	calls.Store(0)
	clear(auths)
	run(4, `{ product(id: "p1") { id name } }`, func(i int) []string { return []string{"Authorization", fmt.Sprintf("Bearer user-%d", i)} })
	if len(auths) != 4 {
		t.Errorf("queries of 4 callers reached the subgraph as %v, want one each", auths)
	}
}

// A client that hangs up does not fail the others sharing its query: the
// shared subgraph request is nobody's to cancel.
func TestSharedQuerySurvivesTheFirstCallerLeaving(t *testing.T) {
	arrived := make(chan struct{}, 8)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"product":{"id":"p1","name":"Product p1"}}}`)
	}))
	defer slow.Close()
	g := startGraph(t, func(o *Options) { o.Subgraphs[0].RoutingURL = slow.URL + "/graphql" })
	body := `{"query":"{ product(id: \"p1\") { id name } }"}`

	// The first caller gives up while the subgraph is still answering.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.server.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first query never reached the subgraph")
	}
	done := make(chan *response, 1)
	go func() { done <- post(t, g.server, body) }()
	time.Sleep(50 * time.Millisecond) // the second caller joins the shared request
	cancel()
	res := <-done
	if res.status != http.StatusOK || len(res.Errors) > 0 || res.Data["product"] == nil {
		t.Fatalf("the caller who stayed got %d %s", res.status, res.body)
	}
	if n := len(arrived); n != 0 {
		t.Errorf("the subgraph was asked %d more times", n)
	}
}

// The router lets an idle connection to a subgraph go in half the
// subgraphs' idle timeout, before the subgraph closes it: a POST sent on a
// connection the server is closing fails and is not retried.
func TestIdleSubgraphConnectionsDroppedBeforeTheSubgraphDropsThem(t *testing.T) {
	g := startGraph(t, func(o *Options) { o.SubgraphIdleTimeout = time.Second })
	query := func() {
		if res := postQuery(t, g.server, `{ product(id: "p1") { id } }`, nil); res.status != http.StatusOK {
			t.Fatalf("query: %d %s", res.status, res.body)
		}
	}
	query()
	query()
	time.Sleep(700 * time.Millisecond) // past the router's 500ms, within the subgraph's 1s
	query()
	reqs := g.products.recorded()
	if len(reqs) != 3 {
		t.Fatalf("%d subgraph requests", len(reqs))
	}
	if reqs[0].Remote != reqs[1].Remote {
		t.Errorf("back-to-back requests used two connections: %s, %s", reqs[0].Remote, reqs[1].Remote)
	}
	if reqs[2].Remote == reqs[1].Remote {
		t.Errorf("the connection idle for 700ms was reused (%s): the router keeps idle connections too long", reqs[2].Remote)
	}
}
