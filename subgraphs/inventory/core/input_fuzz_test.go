package core

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// FuzzAdjustInput: adjustStock's input, normalized and validated as
// Inventory.Adjust does first. A delta of 0 or beyond a million units
// either way is refused; accepted ids are canonical UUIDs.
func FuzzAdjustInput(f *testing.F) {
	f.Add("0193c1d4-0000-7000-8000-000000000001", 10, "receipt", "key-1")
	f.Add(" 0193C1D4-0000-7000-8000-000000000001 ", -3, " broken ", " k ")
	f.Add("not-a-uuid", 0, "", "")
	f.Add("0193c1d4-0000-7000-8000-000000000001", math.MaxInt, strings.Repeat("r", 501), strings.Repeat("k", 201))
	f.Add("0193c1d4-0000-7000-8000-000000000001", math.MinInt, "'; DROP TABLE stock; --", "{{.}}")
	f.Add("urn:uuid:0193c1d4-0000-7000-8000-000000000001", 1000001, "\u202e", "\x00")
	f.Fuzz(func(t *testing.T, id string, delta int, reason, key string) {
		in := AdjustInput{ProductID: id, Delta: delta, Reason: reason, IdempotencyKey: key}
		in.normalize()
		errs := in.validate()
		codes := []usererror.Code{usererror.Invalid, usererror.Required, usererror.TooLong, usererror.TooShort, usererror.OutOfRange}
		for _, e := range errs {
			if len(e.Field) != 2 || e.Field[0] != "input" || !slices.Contains(codes, e.Code) ||
				!strings.Contains(strings.ToLower(e.Message), strings.ToLower(e.Field[1])) {
				t.Fatalf("bad user error %+v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		if in.Delta == 0 || in.Delta > 1_000_000 || in.Delta < -1_000_000 || in.Reason == "" || in.IdempotencyKey == "" || !isCanonical(in.ProductID) {
			t.Fatalf("accepted %+v", in)
		}
	})
}

func isCanonical(id string) bool {
	c, ok := uuids.Canonical(id)
	return ok && c == id
}
