package router

import (
	"strings"
	"testing"

	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/astparser"
)

// expandedStats measures an operation the slow way, by expanding every
// fragment where it is spread; it gives up (false) past budget fields.
// It is the reference measureOperation must agree with.
func expandedStats(doc *ast.Document, operationName string, budget int) (operationStats, bool) {
	op, ok := selectedOperation(doc, operationName)
	if !ok || !doc.OperationDefinitions[op].HasSelections {
		return operationStats{}, false
	}
	e := &expander{doc: doc, budget: budget}
	return e.measure(doc.OperationDefinitions[op].SelectionSet, map[string]bool{})
}

// expander is expandedStats' walk: work counts the selections visited, up
// to budget.
type expander struct {
	doc          *ast.Document
	work, budget int
}

// flatten lists the fields directly in a set, fragments inlined.
func (e *expander) flatten(set int, onStack map[string]bool, out *[]int) bool {
	doc := e.doc
	for _, selRef := range doc.SelectionSets[set].SelectionRefs {
		if e.work++; e.work > e.budget {
			return false
		}
		sel := doc.Selections[selRef]
		switch sel.Kind {
		case ast.SelectionKindField:
			*out = append(*out, sel.Ref)
		case ast.SelectionKindInlineFragment:
			if f := doc.InlineFragments[sel.Ref]; f.HasSelections && !e.flatten(f.SelectionSet, onStack, out) {
				return false
			}
		case ast.SelectionKindFragmentSpread:
			name := doc.FragmentSpreadNameString(sel.Ref)
			ref, ok := doc.FragmentDefinitionRef([]byte(name))
			if !ok || onStack[name] || !doc.FragmentDefinitions[ref].HasSelections {
				continue
			}
			onStack[name] = true
			ok = e.flatten(doc.FragmentDefinitions[ref].SelectionSet, onStack, out)
			delete(onStack, name)
			if !ok {
				return false
			}
		}
	}
	return true
}

// measure counts a set's fields with their fragments expanded.
func (e *expander) measure(set int, onStack map[string]bool) (operationStats, bool) {
	doc := e.doc
	var fields []int
	if !e.flatten(set, onStack, &fields) {
		return operationStats{}, false
	}
	s := operationStats{RootFields: len(fields)}
	seen := map[string]bool{}
	for _, ref := range fields {
		f := doc.Fields[ref]
		name := doc.FieldAliasOrNameString(ref)
		if seen[name] {
			s.Duplicates++
		}
		seen[name] = true
		child := operationStats{}
		if f.HasSelections {
			var ok bool
			if child, ok = e.measure(f.SelectionSet, onStack); !ok {
				return operationStats{}, false
			}
		}
		s.Depth = max(s.Depth, child.Depth+1)
		s.Fields += 1 + child.Fields
		s.Aliases += child.Aliases
		if f.Alias.IsDefined {
			s.Aliases++
		}
		s.Duplicates += child.Duplicates
	}
	return s, true
}

// FuzzMeasureOperation: for any document that parses and has no fragment
// cycle (those are refused before measuring), the memoised counts equal
// those of the expanded operation whenever it is small enough to expand;
// and counting tokens never panics.
func FuzzMeasureOperation(f *testing.F) {
	for _, seed := range []string{
		`{ a b c }`,
		`{ a a b { c c c } ...F } fragment F on Query { a b }`,
		`{ x { ... on A { id } ... on B { id } } }`,
		`query { a { ...F } x: a { ...F } } fragment F on T { b { y: c z: c } }`,
		`{ p { ...F } q { ...F } } fragment F on T { id id ...G } fragment G on T { id k: id }`,
		`query A { a } query B { b { ...F } } fragment F on T { c }`,
		doublingFragments(5),
		duplicateFields(50),
		`{ ...A ...B } fragment A on Query { x ...B } fragment B on Query { x { y } }`,
		`{ a(x: 1) @include(if: true) { b } }`,
		`{ "unterminated`,
	} {
		f.Add(seed, "")
	}
	f.Add(`query A { a } query B { b b }`, "B")
	f.Fuzz(func(t *testing.T, query, operationName string) {
		if n := countTokens(query); n < 0 || n > len(query) {
			t.Fatalf("%d tokens in %d bytes", n, len(query))
		}
		doc, report := astparser.ParseGraphqlDocumentString(query)
		if report.HasErrors() {
			return
		}
		if _, cyclic := cyclicFragment(&doc); cyclic {
			return
		}
		got, ok := measureOperation(&doc, operationName)
		want, small := expandedStats(&doc, operationName, 10_000)
		if !small {
			if ok && (got.Fields < 0 || got.Duplicates < 0 || got.Aliases < 0) {
				t.Fatalf("negative counts %+v", got)
			}
			return
		}
		if !ok || got != want {
			t.Fatalf("%q: measured %+v (%v), expanded %+v", clipQuery(query), got, ok, want)
		}
	})
}

func clipQuery(q string) string {
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return strings.TrimSpace(q)
}
