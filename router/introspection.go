package router

import (
	"context"
	"errors"
	"net/http"

	"github.com/wundergraph/graphql-go-tools/execution/graphql"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/astparser"
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

// checkIntrospection refuses introspection when Options.Introspection is off.
func (o *Options) checkIntrospection(doc *ast.Document) *requestError {
	if o.Introspection || !usesIntrospection(doc) {
		return nil
	}
	return fail(http.StatusBadRequest, codeValidationFailed, introspectionDisabled)
}

// beforeStartHooks runs the checks of operations that arrive over
// websockets, which skip readRequest; the first error is the operation's.
type beforeStartHooks []interface {
	OnBeforeStart(context.Context, *graphql.Request) error
}

func (hs beforeStartHooks) OnBeforeStart(ctx context.Context, op *graphql.Request) error {
	for _, h := range hs {
		if err := h.OnBeforeStart(ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// introspectionHook refuses introspection over websockets when it is off.
type introspectionHook struct{ opts Options }

func (h introspectionHook) OnBeforeStart(_ context.Context, op *graphql.Request) error {
	if h.opts.Introspection {
		return nil
	}
	doc, report := astparser.ParseGraphqlDocumentString(op.Query)
	if report.HasErrors() {
		return nil // the engine reports parse errors itself
	}
	if usesIntrospection(&doc) {
		return errors.New(introspectionDisabled)
	}
	return nil
}
