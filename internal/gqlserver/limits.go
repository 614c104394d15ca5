package gqlserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Defaults of Options.MaxBodyBytes and Options.MaxTokens, as in config.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxTokens    = 15_000
)

// Bounds of a document's shape, checked before gqlgen validates it.
//
// gqlparser's OverlappingFieldsCanBeMerged rule compares every pair of
// fields that share a response name, and every pair of fragments spread in
// a selection set; gqlgen's executor merges the fields of a selection set by
// comparing each with those before it. Their cost grows with the square of
// those counts, and the token limit alone lets through documents that cost
// seconds (15,000 identical fields took 14 s, and 14,998 fit the limit; see
// BenchmarkHostileDocuments). Counting them first is linear, and within
// these bounds the worst document costs milliseconds. The router sends
// subgraphs neither duplicate fields nor named fragments (it merges the
// first and inlines the second), and selection sets no wider than a type's
// fields plus the client's aliases (MART_MAX_ALIASES, 30), so the bounds
// never touch its queries.
const (
	// MaxDuplicateFields bounds the fields that merge with an earlier one
	// of the same response name at the same place of the result, fragments
	// expanded.
	MaxDuplicateFields = 100
	// MaxSelectionFields bounds the distinct response names of one
	// selection set, fragments expanded.
	MaxSelectionFields = 1000
	// MaxFragments bounds the fragment definitions of one document.
	MaxFragments = 100
)

// Codes of the limits' errors.
const (
	PayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	QueryLimitExceeded = "QUERY_LIMIT_EXCEEDED"
	badRequest         = "BAD_REQUEST"
)

func init() {
	// Answered like gqlgen's own parse and validation errors (422, or 400
	// for application/graphql-response+json), not as a 200.
	errcode.RegisterErrorType(QueryLimitExceeded, errcode.KindProtocol)
}

// limitBody refuses a body over limit bytes with a 413 GraphQL error: by its
// Content-Length before reading it, and for a body without a length as soon
// as the limit is passed. The body is read here, so that both are answered
// as such, and a body that cannot be read (the client went away, or was too
// slow for the server's read timeout) as a 400, not as gqlgen's 200 "could
// not read request body" with the connection's addresses in it.
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			var body bytes.Buffer
			if r.ContentLength > 0 {
				body.Grow(int(r.ContentLength) + bytes.MinRead)
			}
			_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				tooLarge(w, limit)
				return
			case err != nil:
				writeError(w, http.StatusBadRequest, "could not read the request body", badRequest)
				return
			}
			r.Body = io.NopCloser(&body)
		}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter, limit int64) {
	// The rest of the body is not read: the connection is not reused.
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", limit), PayloadTooLarge)
}

func writeError(w http.ResponseWriter, status int, message, code string) {
	type extensions struct {
		Code string `json:"code"`
	}
	type gqlError struct {
		Message    string     `json:"message"`
		Extensions extensions `json:"extensions"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []gqlError `json:"errors"`
	}{[]gqlError{{message, extensions{code}}}})
}

// shapeLimit refuses, before gqlgen parses and validates a document, one
// whose validation would cost too much (see MaxDuplicateFields). Documents
// in the query cache passed it already.
type shapeLimit struct {
	maxTokens int
	cache     graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = shapeLimit{}

func (shapeLimit) ExtensionName() string                   { return "ShapeLimit" }
func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l shapeLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := l.cache.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.maxTokens)
	if err != nil {
		return nil // gqlgen parses it again and reports the error
	}
	if msg := checkShape(doc, l.maxTokens); msg != "" {
		return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": QueryLimitExceeded}}
	}
	return nil
}

// checkShape returns why doc is refused, or "". It counts the fields of
// every operation and fragment definition with their fragments expanded,
// and stops once a bound is passed, so its own cost is bounded by
// maxFields, whatever the fragments multiply.
func checkShape(doc *ast.QueryDocument, maxFields int) string {
	if len(doc.Fragments) > MaxFragments {
		return fmt.Sprintf("query has %d fragment definitions, more than the maximum of %d", len(doc.Fragments), MaxFragments)
	}
	c := shapeCounter{
		fragments: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		expanding: map[string]bool{},
		paths:     map[pathKey]int32{},
		children:  map[int32]int{},
		maxFields: maxFields,
	}
	for _, f := range doc.Fragments {
		c.fragments[f.Name] = f
	}
	for _, op := range doc.Operations {
		c.walk(op.SelectionSet, c.root())
	}
	// Validation compares the fields of every fragment definition too,
	// used or not.
	for _, f := range doc.Fragments {
		c.expanding[f.Name] = true
		c.walk(f.SelectionSet, c.root())
		c.expanding[f.Name] = false
	}
	switch {
	case c.fields > maxFields:
		return fmt.Sprintf("query has more than %d fields and fragment spreads once its fragments are expanded", maxFields)
	case c.duplicates > MaxDuplicateFields:
		return fmt.Sprintf("query has more than %d duplicate fields (fields that repeat the name or alias of a field they merge with), fragments expanded", MaxDuplicateFields)
	case c.widest > MaxSelectionFields:
		return fmt.Sprintf("query has a selection set of more than %d fields (distinct names or aliases), fragments expanded", MaxSelectionFields)
	}
	return ""
}

// pathKey is one place in a response: the place of the parent field and
// the response name (alias or name) under it.
type pathKey struct {
	parent int32
	name   string
}

type shapeCounter struct {
	fragments  map[string]*ast.FragmentDefinition
	expanding  map[string]bool // fragments being expanded: a cycle is NoFragmentCycles' to report
	paths      map[pathKey]int32
	children   map[int32]int // distinct response names under a place
	next       int32
	fields     int
	duplicates int
	widest     int // the most children of one place
	maxFields  int
}

func (c *shapeCounter) root() int32 { c.next++; return -c.next }

func (c *shapeCounter) over() bool {
	return c.fields > c.maxFields || c.duplicates > MaxDuplicateFields || c.widest > MaxSelectionFields
}

func (c *shapeCounter) walk(set ast.SelectionSet, parent int32) {
	for _, sel := range set {
		if c.over() {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			c.fields++
			key := pathKey{parent, s.Alias}
			id, seen := c.paths[key]
			if seen {
				c.duplicates++
			} else {
				c.next++
				id = c.next
				c.paths[key] = id
				c.children[parent]++
				c.widest = max(c.widest, c.children[parent])
			}
			c.walk(s.SelectionSet, id)
		case *ast.InlineFragment:
			c.walk(s.SelectionSet, parent)
		case *ast.FragmentSpread:
			// A spread counts as a field: fragments made only of spreads
			// expand too.
			c.fields++
			f := c.fragments[s.Name]
			if f == nil || c.expanding[s.Name] {
				continue
			}
			c.expanding[s.Name] = true
			c.walk(f.SelectionSet, parent)
			c.expanding[s.Name] = false
		}
	}
}
