package router

import (
	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
)

const introspectionDisabled = "introspection is disabled on this server: __schema and __type cannot be queried (__typename can)"

// usesIntrospection reports whether the document selects __schema or
// __type anywhere, operations and fragments alike. Both are only valid on
// the query root, and no schema field may start with "__", so a field of
// that name is always introspection.
func usesIntrospection(doc *ast.Document) bool {
	for i := range doc.Fields {
		switch doc.FieldNameString(i) {
		case "__schema", "__type":
			return true
		}
	}
	return false
}
