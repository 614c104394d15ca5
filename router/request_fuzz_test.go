package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// requestSeeds are hostile and ordinary GraphQL-over-HTTP bodies.
func requestSeeds() []string {
	nested := "__typename"
	for range 100 {
		nested = "products { edges { node { " + nested + " } } }"
	}
	var aliases strings.Builder
	for i := range 2000 {
		aliases.WriteString("a")
		aliases.WriteString(strings.Repeat("x", i%7))
		aliases.WriteString(": __typename ")
	}
	return []string{
		`{"query":"{ products { edges { node { id name } } } }"}`,
		`{"query":"query Q($n: Int) { products(first: $n) { edges { cursor } } }","variables":{"n":2},"operationName":"Q"}`,
		`{"query":"{ products`,
		`[{"query":"{ __typename }"},{"query":"{ __typename }"}]`,
		` [ ]`,
		`{"query":"mutation { createProduct(input: {sku: \"A\"}) { product { id } } }"}`,
		`{"query":"subscription { productChanged(id: \"1\") { id } }"}`,
		`{"query":"{ ` + nested + ` }"}`,
		`{"query":"{ ` + aliases.String() + ` }"}`,
		`{"query":"fragment A on Query { ...B } fragment B on Query { ...A } { ...A }"}`,
		`{"query":"{ __typename } fragment A on Query { ... on Query { products { edges { node { ...B } } } } } fragment B on Product { ...C } fragment C on Product { ... on Product { ...B } }"}`,
		`{"query":"fragment A on Query { ...A } query Q { __typename }","operationName":"Q"}`,
		`{"query":"` + strings.Repeat("{a", 20_000) + strings.Repeat("}", 20_000) + `"}`,
		`{"query":"{ __schema { types { name } } }"}`,
		`{"query":"{ a: __typename }","variables":"not an object"}`,
		`{"query":"{ a: __typename }","variables":[1,2]}`,
		`{"query":123}`,
		`{"query":null}`,
		`{"query":"   "}`,
		`{"query":"{ products(first: 99999999999999999999) { edges { cursor } } }"}`,
		`{"query":"query { a } query { b }"}`,
		`{"query":"query A { a } query B { b }","operationName":"C"}`,
		`{"query":"{ product(id: \"' OR 1=1; --\") { id } }"}`,
		`{"query":"{ \u0000 }"}`,
		"{\"query\":\"{ \xff\xfe }\"}",
		`{"query":"{ __typename }","variables":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		`{"query":"{ __typename }","query":"{ products { edges { cursor } } }"}`,
		`null`,
		``,
	}
}

// FuzzReadRequest drives the router's request parsing and limits with
// arbitrary methods, content types, bodies and query strings. It needs no
// subgraph: readRequest decides everything before planning. Property: no
// panic; a refusal is a requestError with a 4xx status and coded,
// non-empty messages; an accepted request has a parsed document.
func FuzzReadRequest(f *testing.F) {
	for i, body := range requestSeeds() {
		ct := []string{"application/json", "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded", "application/graphql-response+json", "multipart/form-data; boundary=x"}[i%7]
		f.Add("POST", ct, []byte(body), "")
	}
	f.Add("GET", "", []byte(nil), "query="+url.QueryEscape("{ __typename }"))
	f.Add("GET", "", []byte(nil), "query="+url.QueryEscape("mutation { a }"))
	f.Add("GET", "", []byte(nil), "query=%7B&variables=%7Bnope")
	f.Add("GET", "", []byte(nil), "query=x&query=y&operationName=&variables=null")
	f.Add("PUT", "application/json", []byte(`{"query":"{ a }"}`), "")
	f.Add("DELETE", "", []byte(nil), ";;;&&&==%zz")

	rt := &Router{opts: Options{Config: Config{MaxBodyBytes: 64 << 10}}}
	rt.opts.setDefaults()
	rt.log = rt.opts.Logger
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte, rawQuery string) {
		if !validMethod(method) {
			return
		}
		r := httptest.NewRequest(http.MethodGet, "/graphql", nil)
		r.Method = method
		r.URL.RawQuery = rawQuery
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		op, err := rt.readRequest(w, r)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("not a requestError: %v", err)
			}
			if re.status < 400 || re.status > 499 || len(re.errs) == 0 {
				t.Fatalf("status %d errors %+v", re.status, re.errs)
			}
			for _, e := range re.errs {
				if e.Message == "" || e.Extensions["code"] == "" {
					t.Fatalf("uncoded error %+v", e)
				}
			}
			// What the client receives is JSON.
			rec := httptest.NewRecorder()
			rt.writeRequestError(rec, err)
			if !json.Valid(rec.Body.Bytes()) || rec.Code != re.status {
				t.Fatalf("response %d %q", rec.Code, rec.Body.String())
			}
			return
		}
		if op == nil || op.doc == nil || strings.TrimSpace(op.query) == "" || !json.Valid(op.variables) || op.variables[0] != '{' {
			t.Fatalf("accepted %+v", op)
		}
	})
}

// FuzzServeHTTP sends arbitrary bodies through the whole router (parsing,
// planning, execution against a stub subgraph).
// Whatever the body, the answer is GraphQL JSON with a status below 500.
func FuzzServeHTTP(f *testing.F) {
	for _, body := range requestSeeds() {
		f.Add([]byte(body))
	}
	f.Add([]byte(`{"query":"{ products { edges { node { id name stock { available } } } } }"}`))
	f.Add([]byte(`{"query":"query($id: ID!) { product(id: $id) { id stock { available } } }","variables":{"id":{"nested":[1,2,3]}}}`))
	f.Add([]byte(`{"query":"{ product(id: 1e400) { id } }"}`))
	f.Add([]byte(`{"query":"{ ...on Query { ...on Query { products { edges { node { ...on Product { id } } } } } } }"}`))
	// The subgraphs answer every fetch with an empty list or null entities:
	// this target is about what the router makes of the client's request.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Query string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(body.Query, "_entities") {
			_, _ = io.WriteString(w, `{"data":{"_entities":[]}}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":{"products":{"edges":[],"pageInfo":{"hasNextPage":false}},"product":null}}`)
	}))
	f.Cleanup(upstream.Close)
	rt, err := New(context.Background(), Options{Subgraphs: []Subgraph{
		{Name: "products", RoutingURL: upstream.URL + "/graphql", SchemaFile: "testdata/products.graphqls"},
		{Name: "inventory", RoutingURL: upstream.URL + "/graphql", SchemaFile: "testdata/inventory.graphqls"},
	}, Config: Config{RequestTimeout: 5 * time.Second}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = rt.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("not JSON: %q", w.Body.String())
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}
