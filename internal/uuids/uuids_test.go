package uuids_test

import (
	"slices"
	"testing"

	"github.com/onlinemart/mart/internal/uuids"
)

const id = "0193c1d4-0000-7000-8000-00000000000a"

func TestCanonical(t *testing.T) {
	for _, s := range []string{id, "0193C1D4-0000-7000-8000-00000000000A", "urn:uuid:" + id, "{" + id + "}", "0193c1d400007000800000000000000a"} {
		if got, ok := uuids.Canonical(s); !ok || got != id {
			t.Errorf("Canonical(%q) = %q, %v; want %q", s, got, ok, id)
		}
	}
	for _, s := range []string{"", "not-a-uuid", id + "0"} {
		if got, ok := uuids.Canonical(s); ok || got != s {
			t.Errorf("Canonical(%q) = %q, %v; want it unchanged and false", s, got, ok)
		}
	}
}

func TestCanonicalAll(t *testing.T) {
	each, valid := uuids.CanonicalAll([]string{"urn:uuid:" + id, "nope", id})
	if !slices.Equal(each, []string{id, "", id}) || !slices.Equal(valid, []string{id, id}) {
		t.Errorf("CanonicalAll: each %q, valid %q", each, valid)
	}
	if each, valid := uuids.CanonicalAll(nil); len(each) != 0 || valid != nil {
		t.Errorf("CanonicalAll(nil): %q, %q", each, valid)
	}
}
