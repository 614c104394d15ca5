package router

import (
	"fmt"
	"net/http"

	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
)

// operationStats measures an operation as written, with fragments expanded
// where they are spread, so a fragment cannot hide depth or aliases.
type operationStats struct {
	Depth      int
	Aliases    int
	RootFields int
}

// statsWalker memoises per fragment so that fragments spread many times
// (the classic "fragment bomb") cost linear time to measure; the counts may
// then grow large, which is exactly what the limits are for.
type statsWalker struct {
	doc       *ast.Document
	fragments map[string]operationStats
	visiting  map[string]bool
}

// measureOperation returns the stats of the operation that would run for
// operationName, and false when there is no such single operation (the
// engine's validation reports that case).
func measureOperation(doc *ast.Document, operationName string) (operationStats, bool) {
	op, ok := selectedOperation(doc, operationName)
	if !ok || !doc.OperationDefinitions[op].HasSelections {
		return operationStats{}, false
	}
	w := statsWalker{doc: doc, fragments: map[string]operationStats{}, visiting: map[string]bool{}}
	return w.selectionSet(doc.OperationDefinitions[op].SelectionSet), true
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

// selectionSet returns the depth below the set, its aliases, and in
// RootFields the number of fields directly in it (through fragments).
func (w *statsWalker) selectionSet(ref int) operationStats {
	var s operationStats
	for _, selRef := range w.doc.SelectionSets[ref].SelectionRefs {
		sel := w.doc.Selections[selRef]
		var child operationStats
		switch sel.Kind {
		case ast.SelectionKindField:
			f := w.doc.Fields[sel.Ref]
			if f.HasSelections {
				child = w.selectionSet(f.SelectionSet)
			}
			child.Depth++
			if f.Alias.IsDefined {
				child.Aliases++
			}
			child.RootFields = 1
		case ast.SelectionKindInlineFragment:
			if frag := w.doc.InlineFragments[sel.Ref]; frag.HasSelections {
				child = w.selectionSet(frag.SelectionSet)
			}
		case ast.SelectionKindFragmentSpread:
			child = w.fragment(w.doc.FragmentSpreadNameString(sel.Ref))
		}
		s.Depth = max(s.Depth, child.Depth)
		s.Aliases += child.Aliases
		s.RootFields += child.RootFields
	}
	return s
}

func (w *statsWalker) fragment(name string) operationStats {
	if s, ok := w.fragments[name]; ok {
		return s
	}
	ref, ok := w.doc.FragmentDefinitionRef([]byte(name))
	// Unknown and cyclic fragments are validation errors; count nothing here.
	if !ok || w.visiting[name] || !w.doc.FragmentDefinitions[ref].HasSelections {
		return operationStats{}
	}
	w.visiting[name] = true
	s := w.selectionSet(w.doc.FragmentDefinitions[ref].SelectionSet)
	delete(w.visiting, name)
	w.fragments[name] = s
	return s
}

// checkLimits returns a client-facing message for the first limit exceeded.
func (o *Options) checkLimits(s operationStats) string {
	switch {
	case o.MaxDepth > 0 && s.Depth > o.MaxDepth:
		return fmt.Sprintf("query depth %d exceeds the maximum depth of %d", s.Depth, o.MaxDepth)
	case o.MaxAliases > 0 && s.Aliases > o.MaxAliases:
		return fmt.Sprintf("query uses %d aliases, more than the maximum of %d", s.Aliases, o.MaxAliases)
	case o.MaxRootFields > 0 && s.RootFields > o.MaxRootFields:
		return fmt.Sprintf("query selects %d root fields, more than the maximum of %d", s.RootFields, o.MaxRootFields)
	}
	return ""
}

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
		if msg := rt.opts.checkLimits(stats); msg != "" {
			return fail(http.StatusBadRequest, codeQueryLimitExceeded, "%s", msg)
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
