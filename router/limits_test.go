package router

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/astparser"
)

func TestMeasureOperation(t *testing.T) {
	tests := []struct {
		name, query, operation string
		want                   operationStats
		ok                     bool
	}{
		{"flat", `{ a b c }`, "", operationStats{Depth: 1, RootFields: 3, Fields: 3}, true},
		{"nested", `{ a { b { c { d } } } e }`, "", operationStats{Depth: 4, RootFields: 2, Fields: 5}, true},
		{"inline fragments add no depth", `{ a { ... on T { b { c } } } }`, "", operationStats{Depth: 3, RootFields: 1, Fields: 3}, true},
		{"fragments count where spread", `query { a { ...F } x: a { ...F } } fragment F on T { b { y: c z: c } }`, "", operationStats{Depth: 3, Aliases: 5, RootFields: 2, Fields: 8}, true},
		{"root fields through fragments", `{ ...R ... on Query { c } } fragment R on Query { a b }`, "", operationStats{Depth: 1, RootFields: 3, Fields: 3}, true},
		{"cyclic fragments terminate", `{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { ...F } }`, "", operationStats{Depth: 3, RootFields: 1, Fields: 3}, true},
		{"named operation", `query A { a } query B { b { c } }`, "B", operationStats{Depth: 2, RootFields: 1, Fields: 2}, true},
		{"ambiguous without a name", `query A { a } query B { b }`, "", operationStats{}, false},
		{"unknown name", `query A { a }`, "C", operationStats{}, false},
		// a×3 and b×2 at the root (fragment merged in), c×3 below b.
		{"duplicate siblings", `{ a a b { c c c } ...F } fragment F on Query { a b }`, "", operationStats{Depth: 2, RootFields: 5, Fields: 8, Duplicates: 5}, true},
		{"inline fragments merge into their set", `{ x { ... on A { id } ... on B { id } } }`, "", operationStats{Depth: 2, RootFields: 1, Fields: 3, Duplicates: 1}, true},
		{"an alias is its own response name", `{ a b: a c: a }`, "", operationStats{Depth: 1, Aliases: 2, RootFields: 3, Fields: 3}, true},
		{"duplicates in a fragment count where spread", `{ p { ...F } q { ...F } } fragment F on T { id id }`, "", operationStats{Depth: 2, RootFields: 2, Fields: 6, Duplicates: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, report := astparser.ParseGraphqlDocumentString(tt.query)
			if report.HasErrors() {
				t.Fatal(report.Error())
			}
			got, ok := measureOperation(&doc, tt.operation)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// doublingFragments is the review's fragment bomb: each fragment spreads
// the next one twice, no aliases, depth 2, under 1 KB at 22 levels; 2^levels
// fields once expanded.
func doublingFragments(levels int) string {
	var q strings.Builder
	q.WriteString(`{ products { ...F0 } }`)
	for i := range levels {
		fmt.Fprintf(&q, " fragment F%d on Product { ...F%d ...F%d }", i, i+1, i+1)
	}
	fmt.Fprintf(&q, " fragment F%d on Product { id }", levels)
	return q.String()
}

// duplicateFields is { products { id id … } } with n ids.
func duplicateFields(n int) string {
	return `{ products { ` + strings.Repeat("id ", n) + `} }`
}

func TestFragmentBombIsMeasuredWithoutExpanding(t *testing.T) {
	opts := Options{}
	opts.setDefaults()
	for _, levels := range []int{16, 22, 30, 100} {
		t.Run(strconv.Itoa(levels), func(t *testing.T) {
			doc, report := astparser.ParseGraphqlDocumentString(doublingFragments(levels))
			if report.HasErrors() {
				t.Fatal(report.Error())
			}
			got, _ := measureOperation(&doc, "")
			want := operationStats{Depth: 2, RootFields: 1, Fields: math.MaxInt, Duplicates: math.MaxInt - 1}
			if levels < 62 {
				want.Fields, want.Duplicates = 1<<levels+1, 1<<levels-1
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if _, limit := opts.checkLimits(got); limit != "fields" {
				t.Fatalf("refused by %q, want fields", limit)
			}
		})
	}
	// Aliased doubling grows aliases as fast: the counts saturate, never wrap.
	q := `{ a { ...F0 } }`
	for i := range 100 {
		q += fmt.Sprintf(" fragment F%d on T { x: b { ...F%d } y: b { ...F%d } }", i, i+1, i+1)
	}
	q += " fragment F100 on T { c }"
	doc, report := astparser.ParseGraphqlDocumentString(q)
	if report.HasErrors() {
		t.Fatal(report.Error())
	}
	got, _ := measureOperation(&doc, "")
	if got.Aliases != math.MaxInt || got.Fields != math.MaxInt || got.Depth != 102 {
		t.Fatalf("got %+v", got)
	}
}

func TestCountTokens(t *testing.T) {
	for query, want := range map[string]int{
		``:                                     0,
		`{ a }`:                                3,
		`{ a(b: "c d") { ...F } } # a comment`: 13,
		`query Q($v: [Int!]) { a(v: $v) }`:     20,
		`{ a b: c d @x }`:                      9,
		"{ a \"\"\"block\nstring\"\"\" }":      4,
		`{ "unterminated`:                      2,
	} {
		if got := countTokens(query); got != want {
			t.Errorf("%q: %d tokens, want %d", query, got, want)
		}
	}
}

// The budgets answer before the engine: the router never plans a refused
// document (its executions counter stays at zero) and no subgraph sees it,
// over HTTP and over websockets.
func TestBudgetsRefuseBeforePlanning(t *testing.T) {
	graphs := map[string]*testGraph{
		"defaults":                     startGraph(t, nil),
		"no token limit":               startGraph(t, func(o *Options) { o.MaxTokens = -1 }),
		"no token or field limit":      startGraph(t, func(o *Options) { o.MaxTokens, o.MaxFields = -1, -1 }),
		"20 tokens, 5 fields, 2 dupes": startGraph(t, func(o *Options) { o.MaxTokens, o.MaxFields, o.MaxDuplicates = 20, 5, 2 }),
	}
	tests := []struct {
		graph, name, query, message string
	}{
		{"defaults", "fragment doubling, 16 levels", doublingFragments(16), "65537 fields once its fragments are expanded, more than the maximum of 2000"},
		{"defaults", "fragment doubling, 22 levels", doublingFragments(22), "4194305 fields once its fragments are expanded"},
		{"defaults", "fragment doubling, 30 levels", doublingFragments(30), "1073741825 fields once its fragments are expanded"},
		{"defaults", "80,000 duplicate fields", duplicateFields(80_000), "document has 80005 tokens, more than the maximum of 15000"},
		{"no token limit", "80,000 duplicate fields", duplicateFields(80_000), "80001 fields once its fragments are expanded"},
		{"no token or field limit", "80,000 duplicate fields", duplicateFields(80_000), "79999 duplicate fields (fields that repeat a sibling's name or alias), more than the maximum of 500"},
		{"20 tokens, 5 fields, 2 dupes", "tokens", `{ products(first: 1, after: "x") { id } p: product(id: "1") { id } }`, "tokens, more than the maximum of 20"},
		{"20 tokens, 5 fields, 2 dupes", "fields", `{ products { id name } p: products { id name } }`, "6 fields once its fragments are expanded, more than the maximum of 5"},
		{"20 tokens, 5 fields, 2 dupes", "duplicates", `{ __typename ...F ...F } fragment F on Query { __typename __typename }`, "4 duplicate fields"},
	}
	for _, tt := range tests {
		g := graphs[tt.graph]
		t.Run(tt.graph+"/"+tt.name+"/http", func(t *testing.T) {
			res := postQuery(t, g.server, tt.query, nil)
			if res.status != http.StatusBadRequest || res.firstCode() != codeQueryLimitExceeded || !strings.Contains(res.Errors[0].Message, tt.message) {
				t.Fatalf("got %d %.300s, want %q", res.status, res.body, tt.message)
			}
		})
		t.Run(tt.graph+"/"+tt.name+"/websocket", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
			op, _ := json.Marshal(map[string]any{"query": tt.query})
			if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: op}); err != nil {
				t.Fatal(err)
			}
			m := readUntil(ctx, t, c, "error", "next")
			if m.Type != "error" || !strings.Contains(string(m.Payload), tt.message) || !strings.Contains(string(m.Payload), `"code":"QUERY_LIMIT_EXCEEDED"`) {
				t.Fatalf("got %s %.300s", m.Type, m.Payload)
			}
		})
	}
	for name, g := range graphs {
		if n := g.router.executions.Load(); n != 0 {
			t.Errorf("%s: the engine ran %d refused operations", name, n)
		}
		if n := len(g.products.recorded()); n != 0 {
			t.Errorf("%s: refused operations reached the subgraph %d times", name, n)
		}
	}
	// Within the budgets the same router plans and runs (the counter counts).
	g := graphs["defaults"]
	if res := postQuery(t, g.server, `{ products { id id name } }`, nil); res.status != http.StatusOK || len(res.Errors) != 0 {
		t.Fatalf("query within the budgets: %d %s", res.status, res.body)
	}
	if n := g.router.executions.Load(); n != 1 {
		t.Fatalf("executions %d after one query, want 1", n)
	}
}

// introspectionQuery is the query GraphiQL sends to load the schema
// (graphql-js's getIntrospectionQuery with every option on).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`

// The default budgets admit the largest document a client of ours sends.
func TestDefaultsAdmitIntrospection(t *testing.T) {
	opts := Options{}
	opts.setDefaults()
	doc, report := astparser.ParseGraphqlDocumentString(introspectionQuery)
	if report.HasErrors() {
		t.Fatal(report.Error())
	}
	got, _ := measureOperation(&doc, "")
	if msg, _ := opts.checkLimits(got); msg != "" {
		t.Fatalf("%+v: %s", got, msg)
	}
	if n := countTokens(introspectionQuery); n > opts.MaxTokens {
		t.Fatalf("%d tokens", n)
	}
	t.Logf("GraphiQL's introspection: %+v, %d tokens", got, countTokens(introspectionQuery))
}
