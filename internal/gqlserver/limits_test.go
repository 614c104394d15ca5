package gqlserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/gqlserver/internal/example"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// exampleServer serves the example subgraph (the product schema's shape,
// fixed data) with the default Options: enough to parse and validate any
// document.
func exampleServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(gqlserver.New(example.NewExecutableSchema(example.Config{Resolvers: &example.Resolver{}}),
		gqlserver.Options{Logger: slog.New(slog.DiscardHandler), Access: example.Access}))
	t.Cleanup(srv.Close)
	return srv.URL + "/graphql"
}

type answer struct {
	status int
	body   string
	code   string // extensions.code of the first error
	msg    string
}

func post(t *testing.T, url string, body io.Reader, length bool) answer {
	t.Helper()
	if !length {
		body = struct{ io.Reader }{body} // hides the length: sent chunked
	}
	resp, err := http.Post(url, "application/json", body)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r gqltest.Response
	_ = json.Unmarshal(b, &r)
	a := answer{status: resp.StatusCode, body: string(b)}
	if len(r.Errors) > 0 {
		a.code, a.msg = r.Errors[0].Code(), r.Errors[0].Message
	}
	return a
}

func query(doc string) io.Reader {
	b, _ := json.Marshal(map[string]string{"query": doc})
	return strings.NewReader(string(b))
}

// A body over MART_SUBGRAPH_MAX_BODY_BYTES is refused with 413 and a
// GraphQL error, whether it announces its length or comes chunked.
func TestBodyOverTheLimitIsRefused(t *testing.T) {
	url := exampleServer(t)
	big := `{"query":"{ __typename }","pad":"` + strings.Repeat("a", gqlserver.DefaultMaxBodyBytes) + `"}`
	want := fmt.Sprintf(`{"errors":[{"message":"request body exceeds the limit of %d bytes","extensions":{"code":"PAYLOAD_TOO_LARGE"}}]}`, gqlserver.DefaultMaxBodyBytes)
	for _, length := range []bool{true, false} {
		a := post(t, url, strings.NewReader(big), length)
		if a.status != http.StatusRequestEntityTooLarge || strings.TrimSpace(a.body) != want {
			t.Errorf("length sent %v: %d %.300s, want 413 %s", length, a.status, a.body, want)
		}
	}
	// Under the limit, with or without a length, the request is served.
	fits := `{"query":"{ __typename }","pad":"` + strings.Repeat("a", 1<<20) + `"}`
	for _, length := range []bool{true, false} {
		if a := post(t, url, strings.NewReader(fits), length); a.status != http.StatusOK || !strings.Contains(a.body, `"__typename":"Query"`) {
			t.Errorf("1 MiB body, length sent %v: %d %.300s", length, a.status, a.body)
		}
	}
}

// A document over MART_SUBGRAPH_MAX_TOKENS is refused by the parser, with
// a code and the limit in the message.
func TestDocumentOverTheTokenLimitIsRefused(t *testing.T) {
	url := exampleServer(t)
	var doc strings.Builder
	doc.WriteString("{ ")
	for i := range gqlserver.DefaultMaxTokens / 3 { // 3 tokens each: 15,002 in all
		fmt.Fprintf(&doc, "a%d: __typename ", i)
	}
	doc.WriteString("}")
	a := post(t, url, query(doc.String()), true)
	if a.status != http.StatusUnprocessableEntity || a.code != "GRAPHQL_PARSE_FAILED" || !strings.Contains(a.msg, fmt.Sprint(gqlserver.DefaultMaxTokens)) {
		t.Errorf("%d %s %q, want 422 GRAPHQL_PARSE_FAILED naming the limit", a.status, a.code, a.msg)
	}
}

// Documents whose validation costs the square of their duplicate fields or
// fragments are refused before gqlgen validates them; documents the router
// sends, or any with fragments used sensibly, are not.
func TestCostlyDocumentsAreRefusedBeforeValidation(t *testing.T) {
	url := exampleServer(t)
	rep := func(s string, n int) string { return strings.Repeat(s, n) }
	over := gqlserver.MaxDuplicateFields + 1
	var bomb strings.Builder
	bomb.WriteString(`query { ...F0 } fragment F30 on Query { __typename } `)
	for i := 29; i >= 0; i-- {
		fmt.Fprintf(&bomb, "fragment F%d on Query { a: products(first: 1) { edges { cursor } } ...F%d ...F%d } ", i, i+1, i+1)
	}
	var manyFragments strings.Builder
	manyFragments.WriteString("{ ")
	for i := range gqlserver.MaxFragments + 1 {
		fmt.Fprintf(&manyFragments, "...F%d ", i)
	}
	manyFragments.WriteString("} ")
	for i := range gqlserver.MaxFragments + 1 {
		fmt.Fprintf(&manyFragments, "fragment F%d on Query { f%d: __typename } ", i, i)
	}
	var wide strings.Builder
	for i := range gqlserver.MaxSelectionFields + 1 {
		fmt.Fprintf(&wide, "a%d: __typename ", i)
	}
	refused := map[string]string{
		"a selection set over the maximum": "{ " + wide.String() + "}",
		"identical fields":                 "{ " + rep("__typename ", over+1) + "}",
		"identical nested fields":          "{ products { edges { " + rep("cursor ", over+1) + "} } }",
		"the same alias":                   "{ " + rep("a: __typename ", over+1) + "}",
		"through inline fragments":         "{ " + rep("... on Query { __typename } ", over+1) + "}",
		"through a fragment spread":        "{ " + rep("...F ", over+1) + "} fragment F on Query { __typename }",
		"in an unused fragment":            "{ __typename } fragment F on Query { " + rep("__typename ", over+1) + "}",
		"merged selections":                "{ " + rep("products { edges { cursor } } ", 35) + "}", // 3 × 34 duplicates
		"a fragment bomb":                  bomb.String(),
		"more fragments than the maximum":  manyFragments.String(),
		"20,000 identical fields (tokens)": "{ " + rep("__typename ", 20_000) + "}",
	}
	for name, doc := range refused {
		a := post(t, url, query(doc), true)
		if a.status != http.StatusUnprocessableEntity || (a.code != gqlserver.QueryLimitExceeded && a.code != "GRAPHQL_PARSE_FAILED") {
			t.Errorf("%s: %d %.300s, want 422 %s", name, a.status, a.body, gqlserver.QueryLimitExceeded)
		}
	}
	if a := post(t, url, query("{ "+rep("__typename ", over+1)+"}"), true); !strings.Contains(a.msg, fmt.Sprint(gqlserver.MaxDuplicateFields)) {
		t.Errorf("the message does not name the limit: %q", a.msg)
	}

	served := map[string]string{
		"duplicates up to the maximum": `{"query":"{ ` + rep("__typename ", gqlserver.MaxDuplicateFields+1) + `}"}`,
		"the widest selection set":     `{"query":"{ ` + wide.String()[len("a0: __typename "):] + `}"}`,
		"a fragment in two places":     `{"query":"{ x: products { ...P } y: products { ...P } } fragment P on ProductConnection { edges { cursor } }"}`,
		"what the router sends": `{"query":"query($representations: [_Any!]!){_entities(representations: $representations){... on Product {__typename id name}}}",
			"variables":{"representations":[]}}`,
	}
	for name, body := range served {
		if a := post(t, url, strings.NewReader(body), true); a.code == gqlserver.QueryLimitExceeded || a.code == "GRAPHQL_PARSE_FAILED" || a.code == "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: %d %.300s", name, a.status, a.body)
		}
	}
	// A fragment cycle is the validator's to report, not a loop here.
	if a := post(t, url, query("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"), true); a.code != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("fragment cycle: %d %.300s", a.status, a.body)
	}
}

// ticker is a schema whose one subscription sends a tick every interval.
type ticker struct{ every time.Duration }

var tickerSchema = gqlparser.MustLoadSchema(&ast.Source{Input: "type Query { now: Int } type Subscription { tick: Int }"})

func (ticker) Schema() *ast.Schema { return tickerSchema }
func (ticker) Complexity(context.Context, string, string, int, map[string]any) (int, bool) {
	return 0, false
}
func (tk ticker) Exec(ctx context.Context) graphql.ResponseHandler {
	if graphql.GetOperationContext(ctx).Operation.Operation != ast.Subscription {
		return graphql.OneShot(&graphql.Response{Data: json.RawMessage(`{"now":0}`)})
	}
	n := 0
	return func(ctx context.Context) *graphql.Response {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tk.every):
		}
		n++
		return &graphql.Response{Data: json.RawMessage(fmt.Sprintf(`{"tick":%d}`, n))}
	}
}

// A subscription lives on after the server's read, write and idle
// timeouts, served as every subgraph is (httpserver): they bound the
// upgrade request, not the websocket after it.
func TestSubscriptionOutlivesTheServerTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := &httpserver.Server{Name: "test", Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Timeouts: httpserver.Timeouts{ShutdownTimeout: time.Second,
		ReadHeaderTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout},
		Handler: gqlserver.New(ticker{every: 100 * time.Millisecond}, gqlserver.Options{
			Logger: slog.New(slog.DiscardHandler), Access: auth.Rules{"Subscription.tick": auth.Public}})}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	sub := gqltest.Client{URL: "http://" + addr.String() + "/graphql"}.Subscribe(t, "subscription { tick }", nil)
	// 15 ticks take 1.5 s, five times the timeouts.
	for want := 1; want <= 15; want++ {
		m := sub.Next(10 * time.Second)
		var data struct{ Tick int }
		if m.Type != "next" || json.Unmarshal(m.Payload.Data, &data) != nil || data.Tick != want {
			t.Fatalf("tick %d: got %+v", want, m)
		}
	}
}
