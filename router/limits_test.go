package router

import (
	"strconv"
	"testing"

	"github.com/wundergraph/graphql-go-tools/v2/pkg/astparser"
)

func TestMeasureOperation(t *testing.T) {
	tests := []struct {
		name, query, operation string
		want                   operationStats
		ok                     bool
	}{
		{"flat", `{ a b c }`, "", operationStats{Depth: 1, RootFields: 3}, true},
		{"nested", `{ a { b { c { d } } } e }`, "", operationStats{Depth: 4, RootFields: 2}, true},
		{"inline fragments add no depth", `{ a { ... on T { b { c } } } }`, "", operationStats{Depth: 3, RootFields: 1}, true},
		{"fragments count where spread", `query { a { ...F } x: a { ...F } } fragment F on T { b { y: c z: c } }`, "", operationStats{Depth: 3, Aliases: 5, RootFields: 2}, true},
		{"root fields through fragments", `{ ...R ... on Query { c } } fragment R on Query { a b }`, "", operationStats{Depth: 1, RootFields: 3}, true},
		{"cyclic fragments terminate", `{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { ...F } }`, "", operationStats{Depth: 3, RootFields: 1}, true},
		{"named operation", `query A { a } query B { b { c } }`, "B", operationStats{Depth: 2, RootFields: 1}, true},
		{"ambiguous without a name", `query A { a } query B { b }`, "", operationStats{}, false},
		{"unknown name", `query A { a }`, "C", operationStats{}, false},
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

func TestFragmentBombIsMeasuredQuickly(t *testing.T) {
	// Each fragment spreads the next one twice: 2^30 fields once inlined.
	q := `{ a { ...F0 } }`
	for i := 0; i < 30; i++ {
		next := strconv.Itoa(i + 1)
		q += " fragment F" + strconv.Itoa(i) + " on T { x: b { ...F" + next + " } y: b { ...F" + next + " } }"
	}
	q += " fragment F30 on T { c }"
	doc, report := astparser.ParseGraphqlDocumentString(q)
	if report.HasErrors() {
		t.Fatal(report.Error())
	}
	got, _ := measureOperation(&doc, "")
	opts := Options{}
	opts.setDefaults()
	if got.Depth != 32 || got.Aliases < 1<<30 || opts.checkLimits(got) == "" {
		t.Fatalf("got %+v", got)
	}
}
