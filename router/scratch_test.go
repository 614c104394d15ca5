package router

import (
	"fmt"
	"testing"
)

func TestScratch(t *testing.T) {
	g := startGraph(t, nil)
	postQuery(t, g.server, `{ products(first: 1) { id } product(id: "p1") { stock } }`, nil)
	for _, r := range g.products.recorded() {
		fmt.Printf("%s %s\n", r.Query, r.Variables)
	}
}
