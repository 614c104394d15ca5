package gqlserver_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/gqlserver/internal/example"
)

// FuzzServeHTTP sends any body to a subgraph's handler, with small limits
// so that the fuzzer reaches them: every answer is a GraphQL response, and
// every refusal carries a code.
func FuzzServeHTTP(f *testing.F) {
	h := gqlserver.New(example.NewExecutableSchema(example.Config{Resolvers: &example.Resolver{}}),
		gqlserver.Options{Logger: slog.New(slog.DiscardHandler), Access: example.Access, Limits: gqlserver.Limits{MaxBodyBytes: 2048, MaxTokens: 200}})
	for _, seed := range []string{
		`{"query":"{ __typename }"}`,
		`{"query":"{ __typename __typename __typename }"}`,
		`{"query":"{ ...F ...F } fragment F on Query { __typename }"}`,
		`{"query":"{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"}`,
		`{"query":"{ a: products { edges { cursor } } a: products { edges { cursor cursor } } }"}`,
		`{"query":"{ ... on Query { __typename ... on Query { __typename } } }"}`,
		`{"query":"query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id } } }","variables":{"r":[]}}`,
		`{"query":"{ __typename","variables":[1]}`,
		`{"query":"` + strings.Repeat("{ a", 50) + `"}`,
		`{"query":"{ __typename }","pad":"` + strings.Repeat("a", 2100) + `"}`,
		``, `[]`, `{"query":42}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, body string, length bool) {
		var r io.Reader = strings.NewReader(body)
		if !length {
			r = struct{ io.Reader }{r}
		}
		req := httptest.NewRequest(http.MethodPost, "/graphql", r)
		if !length {
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp struct {
			Errors []struct {
				Message    string
				Extensions struct{ Code string }
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%d, not JSON: %v: %.300s", rec.Code, err, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			if len(resp.Errors) == 0 || resp.Errors[0].Message == "" {
				t.Fatalf("%d without an error: %.300s", rec.Code, rec.Body.String())
			}
			if rec.Code != http.StatusBadRequest && resp.Errors[0].Extensions.Code == "" {
				t.Fatalf("%d without a code: %.300s", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d: %.300s", rec.Code, rec.Body.String())
		}
		if len(body) > 2048 && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a %d-byte body over the 2048-byte limit: %d %.300s", len(body), rec.Code, rec.Body.String())
		}
	})
}
