package gqltest

import (
	"fmt"
	"strings"
)

// DoublingFragments is the security review's fragment bomb against the
// supergraph: each fragment spreads the next one twice, no aliases, depth
// 2; under 1 KB at 22 levels, 2^levels fields once expanded.
func DoublingFragments(levels int) string {
	var q strings.Builder
	q.WriteString(`{ products(first: 1) { edges { ...F0 } } }`)
	for i := range levels {
		fmt.Fprintf(&q, " fragment F%d on ProductEdge { ...F%d ...F%d }", i, i+1, i+1)
	}
	fmt.Fprintf(&q, " fragment F%d on ProductEdge { cursor }", levels)
	return q.String()
}
