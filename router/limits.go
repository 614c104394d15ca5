package router

import (
	"fmt"
	"math"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/astparser"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/lexer"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/lexer/keyword"
)

// operationStats measures an operation as it would run: with fragments
// expanded where they are spread, so a fragment cannot hide depth, width
// or repetition. Counts saturate at math.MaxInt rather than wrap.
type operationStats struct {
	Depth      int
	Aliases    int
	RootFields int
	// Fields counts every field of the expanded operation.
	Fields int
	// Duplicates counts the fields that repeat the response name (alias or
	// name) of a sibling in the same selection set, fragments merged in:
	// the engine compares each with every sibling of that name.
	Duplicates int
}

// add sums counts, saturating: a document of a few kilobytes can spread a
// fragment 2^100 times.
func add(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// responseKeys counts the fields directly in a selection set by response
// name, through inline fragments and spreads.
type responseKeys map[string]int

// statsWalker memoises per fragment so that fragments spread many times
// (the classic "fragment bomb") cost time linear in the document to
// measure, never in the expanded operation.
type statsWalker struct {
	doc       *ast.Document
	fragments map[string]fragmentStats
	visiting  map[string]bool
}

type fragmentStats struct {
	stats operationStats
	keys  responseKeys
}

// measureOperation returns the stats of the operation that would run for
// operationName, and false when there is no such single operation (the
// engine's validation reports that case).
func measureOperation(doc *ast.Document, operationName string) (operationStats, bool) {
	op, ok := selectedOperation(doc, operationName)
	if !ok || !doc.OperationDefinitions[op].HasSelections {
		return operationStats{}, false
	}
	w := statsWalker{doc: doc, fragments: map[string]fragmentStats{}, visiting: map[string]bool{}}
	return w.fieldSet(doc.OperationDefinitions[op].SelectionSet), true
}

// selectedOperation returns the operation that would run for
// operationName, and false when there is no such single operation.
func selectedOperation(doc *ast.Document, operationName string) (int, bool) {
	op := -1
	for _, node := range doc.RootNodes {
		if node.Kind != ast.NodeKindOperationDefinition {
			continue
		}
		name := doc.OperationDefinitionNameString(node.Ref)
		if operationName == "" || name == operationName {
			if op != -1 && operationName == "" {
				return -1, false // ambiguous without a name
			}
			op = node.Ref
		}
	}
	return op, op != -1
}

// fieldSet measures the selection set of a field or an operation: the
// fields merged into it from fragments are siblings, so its duplicates
// are counted here.
func (w *statsWalker) fieldSet(ref int) operationStats {
	keys := responseKeys{}
	s := w.selectionSet(ref, keys)
	for _, n := range keys {
		s.Duplicates = add(s.Duplicates, n-1)
	}
	return s
}

// selectionSet returns the depth below the set, its aliases, fields and
// the duplicates below it, and in RootFields the number of fields directly
// in it (through fragments), whose response names it adds to keys.
func (w *statsWalker) selectionSet(ref int, keys responseKeys) operationStats {
	var s operationStats
	for _, selRef := range w.doc.SelectionSets[ref].SelectionRefs {
		sel := w.doc.Selections[selRef]
		var child operationStats
		switch sel.Kind {
		case ast.SelectionKindField:
			f := w.doc.Fields[sel.Ref]
			if f.HasSelections {
				child = w.fieldSet(f.SelectionSet)
			}
			child.Depth++
			if f.Alias.IsDefined {
				child.Aliases = add(child.Aliases, 1)
			}
			child.Fields = add(child.Fields, 1)
			child.RootFields = 1
			name := w.doc.FieldAliasOrNameString(sel.Ref)
			keys[name] = add(keys[name], 1)
		case ast.SelectionKindInlineFragment:
			if frag := w.doc.InlineFragments[sel.Ref]; frag.HasSelections {
				child = w.selectionSet(frag.SelectionSet, keys)
			}
		case ast.SelectionKindFragmentSpread:
			frag := w.fragment(w.doc.FragmentSpreadNameString(sel.Ref))
			child = frag.stats
			for name, n := range frag.keys {
				keys[name] = add(keys[name], n)
			}
		}
		s.Depth = max(s.Depth, child.Depth)
		s.Aliases = add(s.Aliases, child.Aliases)
		s.RootFields = add(s.RootFields, child.RootFields)
		s.Fields = add(s.Fields, child.Fields)
		s.Duplicates = add(s.Duplicates, child.Duplicates)
	}
	return s
}

func (w *statsWalker) fragment(name string) fragmentStats {
	if s, ok := w.fragments[name]; ok {
		return s
	}
	ref, ok := w.doc.FragmentDefinitionRef([]byte(name))
	// Unknown and cyclic fragments are validation errors; count nothing here.
	if !ok || w.visiting[name] || !w.doc.FragmentDefinitions[ref].HasSelections {
		return fragmentStats{}
	}
	w.visiting[name] = true
	keys := responseKeys{}
	s := fragmentStats{stats: w.selectionSet(w.doc.FragmentDefinitions[ref].SelectionSet, keys), keys: keys}
	delete(w.visiting, name)
	w.fragments[name] = s
	return s
}

// checkLimits returns a client-facing message for the first limit
// exceeded, and the limit's name (a metric label).
func (o *Options) checkLimits(s operationStats) (msg, limit string) {
	over := func(limit, value int) bool { return limit > 0 && value > limit }
	switch {
	case over(o.MaxDepth, s.Depth):
		return fmt.Sprintf("query depth %d exceeds the maximum depth of %d", s.Depth, o.MaxDepth), "depth"
	case over(o.MaxAliases, s.Aliases):
		return fmt.Sprintf("query uses %d aliases, more than the maximum of %d", s.Aliases, o.MaxAliases), "aliases"
	case over(o.MaxRootFields, s.RootFields):
		return fmt.Sprintf("query selects %d root fields, more than the maximum of %d", s.RootFields, o.MaxRootFields), "root_fields"
	case over(o.MaxFields, s.Fields):
		return fmt.Sprintf("query has %s fields once its fragments are expanded, more than the maximum of %d", count(s.Fields), o.MaxFields), "fields"
	case over(o.MaxDuplicates, s.Duplicates):
		return fmt.Sprintf("query has %s duplicate fields (fields that repeat a sibling's name or alias), more than the maximum of %d", count(s.Duplicates), o.MaxDuplicates), "duplicate_fields"
	}
	return "", ""
}

// count writes a count that may have saturated.
func count(n int) string {
	if n == math.MaxInt {
		return fmt.Sprintf("more than %d", math.MaxInt-1)
	}
	return fmt.Sprint(n)
}

// countTokens counts the lexical tokens of a GraphQL document (comments
// included), in one pass that allocates nothing per token.
func countTokens(query string) int {
	var in ast.Input
	in.ResetInputString(query)
	lx := lexer.Lexer{}
	lx.SetInput(&in)
	n := 0
	for lx.Read().Keyword != keyword.EOF {
		n++
	}
	return n
}

// parseOperation parses a document within the token budget and makes the
// router's checks (checkDocument), the same for HTTP and websockets, all
// before the engine sees the operation.
func (rt *Router) parseOperation(query, operationName string, variables []byte) (*ast.Document, *requestError) {
	if limit := rt.opts.MaxTokens; limit > 0 {
		if n := countTokens(query); n > limit {
			return nil, rt.refuse("tokens", fmt.Sprintf("document has %d tokens, more than the maximum of %d", n, limit))
		}
	}
	doc, report := astparser.ParseGraphqlDocumentString(query)
	if report.HasErrors() {
		return nil, &requestError{status: http.StatusBadRequest, errs: reportErrors(report, codeParseFailed)}
	}
	if err := rt.checkDocument(&doc, operationName, variables); err != nil {
		return nil, err
	}
	return &doc, nil
}

// refuse answers an operation over a limit, counted by limit.
func (rt *Router) refuse(limit, msg string) *requestError {
	refusedOperations.WithLabelValues(limit).Inc()
	return fail(http.StatusBadRequest, codeQueryLimitExceeded, "%s", msg)
}

var refusedOperations = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "mart_router_refused_operations_total",
	Help: "Operations the router refused before planning, by the limit they exceeded.",
}, []string{"limit"})

// checkDocument makes the checks the router adds before the engine sees
// an operation, the same over HTTP and websockets: fragment cycles (the
// engine would recurse until the process dies), the limits, the
// introspection switch and the 32-bit range of Int variables. It returns
// the first failure, or nil.
func (rt *Router) checkDocument(doc *ast.Document, operationName string, variables []byte) *requestError {
	if name, ok := cyclicFragment(doc); ok {
		return fail(http.StatusBadRequest, codeValidationFailed, "%s", cycleMessage(name))
	}
	if stats, ok := measureOperation(doc, operationName); ok {
		if msg, limit := rt.opts.checkLimits(stats); msg != "" {
			return rt.refuse(limit, msg)
		}
	}
	if !rt.opts.Introspection && usesIntrospection(doc) {
		return fail(http.StatusBadRequest, codeValidationFailed, introspectionDisabled)
	}
	if msg := rt.ints.check(doc, operationName, variables); msg != "" {
		return fail(http.StatusBadRequest, codeValidationFailed, "%s", msg)
	}
	return nil
}

// cyclicFragment returns a fragment that spreads itself, directly or
// through other fragments. Such a document is invalid, but the engine
// inlines fragments before it validates and would recurse until the stack
// overflows, which ends the whole process: cycles are refused first.
func cyclicFragment(doc *ast.Document) (string, bool) {
	const visiting, done = 1, 2
	state := map[string]int{}
	cycle := ""
	var visit func(name string) bool
	var spreads func(set int) bool
	spreads = func(set int) bool {
		for _, selRef := range doc.SelectionSets[set].SelectionRefs {
			sel := doc.Selections[selRef]
			switch sel.Kind {
			case ast.SelectionKindField:
				if f := doc.Fields[sel.Ref]; f.HasSelections && spreads(f.SelectionSet) {
					return true
				}
			case ast.SelectionKindInlineFragment:
				if frag := doc.InlineFragments[sel.Ref]; frag.HasSelections && spreads(frag.SelectionSet) {
					return true
				}
			case ast.SelectionKindFragmentSpread:
				if visit(doc.FragmentSpreadNameString(sel.Ref)) {
					return true
				}
			}
		}
		return false
	}
	visit = func(name string) bool {
		switch state[name] {
		case visiting:
			cycle = name
			return true
		case done:
			return false
		}
		state[name] = visiting
		if ref, ok := doc.FragmentDefinitionRef([]byte(name)); ok && doc.FragmentDefinitions[ref].HasSelections && spreads(doc.FragmentDefinitions[ref].SelectionSet) {
			return true
		}
		state[name] = done
		return false
	}
	for ref := range doc.FragmentDefinitions {
		if visit(doc.FragmentDefinitionNameString(ref)) {
			return cycle, true
		}
	}
	return "", false
}

func cycleMessage(name string) string {
	return fmt.Sprintf("fragment %s spreads itself (directly or through other fragments)", name)
}
