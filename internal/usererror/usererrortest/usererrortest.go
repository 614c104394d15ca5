// Package usererrortest checks the promise every input validator makes to
// clients, for tests and fuzz targets: each error names an input field,
// carries a known code and says in words which field is wrong.
package usererrortest

import (
	"slices"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
)

// Check fails t unless every error's path starts at "input", its code is
// one of the common codes or extra, and its message names a field on its
// path (a list item's error may name the list; "newPassword" may be called
// "password", "productId" "product").
func Check(t testing.TB, errs []usererror.UserError, extra ...usererror.Code) {
	t.Helper()
	codes := append([]usererror.Code{usererror.Invalid, usererror.Required, usererror.TooLong, usererror.TooShort,
		usererror.OutOfRange, usererror.Duplicate, usererror.NotFound}, extra...)
	for _, e := range errs {
		if len(e.Field) < 2 || e.Field[0] != "input" || !slices.Contains(codes, e.Code) || e.Message == "" {
			t.Fatalf("user error without a field, code or message: %+v", e)
		}
		msg := strings.ToLower(e.Message)
		named := false
		for _, p := range e.Field[1:] {
			name := strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(p, "Id")), "new")
			named = named || strings.Contains(msg, name)
		}
		if !named {
			t.Fatalf("message %q names none of %v", e.Message, e.Field)
		}
	}
}
