package gqlserver_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/gqlserver/internal/example"
)

// hostileDocuments are documents that are cheap to send and may be costly
// to parse and validate, each at most DefaultMaxTokens tokens long unless
// its name says otherwise.
func hostileDocuments() map[string]string {
	rep := func(s string, n int) string { return strings.Repeat(s, n) }
	numbered := func(format string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	docs := map[string]string{
		// At the bound: 100 duplicates pass, more are refused.
		"duplicates/100": "{ " + rep("__typename ", 101) + "}",
		"duplicates/101": "{ " + rep("__typename ", 102) + "}",
		// 100 fragments (the bound) spread in one selection set, as many
		// fields as fit the other bounds.
		"fragments/100x10": fragments(100, 10),
		"fragments/100x45": fragments(100, 45),
		// 60 fragments each spreading the 59 others that follow (a DAG).
		"fragments/60-spreading-each-other": func() string {
			var b strings.Builder
			b.WriteString("{ ...F0 } ")
			for i := range 60 {
				fmt.Fprintf(&b, "fragment F%d on Query { f%d: __typename ", i, i)
				for j := i + 1; j < 60; j++ {
					fmt.Fprintf(&b, "...F%d ", j)
				}
				b.WriteString("} ")
			}
			return b.String()
		}(),
		// Distinct fields in one selection set: at the bound and past it.
		"aliases/1000":          "{ " + numbered("a%d: __typename ", 1000) + "}",
		"aliases/4900":          "{ " + numbered("a%d: __typename ", 4900) + "}",
		"operations/2900":       numbered("query Q%d { __typename } ", 2900),
		"variables/2400":        "query(" + numbered("$v%d: Int ", 2400) + ") { __typename }",
		"arguments/4900":        "{ products(" + rep("first: 1 ", 4900) + ") { edges { cursor } } }",
		"directives/2100":       "{ __typename " + rep("@include(if: true) ", 2100) + "}",
		"inputfields/4900":      "{ products(filter: {" + rep("search: \"a\" ", 4900) + "}) { edges { cursor } } }",
		"inline-fragments/1800": "{ " + numbered("... on Query { a%d: __typename } ", 1800) + "}",
		"nesting/2900":          rep("{ ... on Query ", 2900) + "{ __typename }" + rep(" }", 2900),
		"list/7400":             "{ products(filter: {search: [" + rep("\"a\" ", 7400) + "]}) { edges { cursor } } }",
	}
	// The finding: n identical un-aliased fields, refused at once now,
	// seconds each before.
	for _, n := range []int{2_000, 5_000, 10_000, 15_000} {
		docs[fmt.Sprintf("identical-typename/%d", n)] = "{ " + rep("__typename ", n) + "}"
		docs[fmt.Sprintf("identical-cursor/%d", n)] = "{ products { edges { " + rep("cursor ", n) + "} } }"
	}
	return docs
}

// fragments is n fragments of m distinct fields each, all spread in one
// selection set: validation compares every pair of them.
func fragments(n, m int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "...F%d ", i)
	}
	b.WriteString("} ")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Query { ", i)
		for j := range m {
			fmt.Fprintf(&b, "f%d_%d: __typename ", i, j)
		}
		b.WriteString("} ")
	}
	return b.String()
}

// BenchmarkHostileDocuments measures what each hostile document costs a
// subgraph's handler, parse and validation included: every iteration sends
// a new document (a comment differs), as an attacker would, so the query
// cache never answers. make bench does not run it; run
//
//	go test ./internal/gqlserver/ -run '^$' -bench HostileDocuments -benchtime 3x
func BenchmarkHostileDocuments(b *testing.B) {
	h := gqlserver.New(example.NewExecutableSchema(example.Config{Resolvers: &example.Resolver{}}),
		gqlserver.Options{Logger: slog.New(slog.DiscardHandler), Access: example.Access})
	for name, doc := range hostileDocuments() {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				body, _ := json.Marshal(map[string]string{"query": fmt.Sprintf("# %d\n%s", i, doc)})
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if i == 1 {
					b.Logf("%d %.160s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
