package uuids_test

import (
	"errors"
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

type row struct{ id string }

func TestLookup(t *testing.T) {
	other := "0193c1d4-0000-7000-8000-00000000000b"
	var asked []string
	find := func(valid []string) ([]*row, error) {
		asked = valid
		return []*row{{other}, {id}}, nil // in any order
	}
	got, err := uuids.Lookup([]string{"urn:uuid:" + id, "nope", other, "0193c1d4-0000-7000-8000-00000000000c", id}, find,
		func(r *row) string { return r.id })
	if err != nil || !slices.Equal(asked, []string{id, other, "0193c1d4-0000-7000-8000-00000000000c", id}) {
		t.Fatalf("asked %q: %v", asked, err)
	}
	if len(got) != 5 || got[0].id != id || got[1] != nil || got[2].id != other || got[3] != nil || got[4].id != id {
		t.Errorf("Lookup: %v", got)
	}

	// No UUID among the ids: no query, and an answer for each.
	got, err = uuids.Lookup([]string{"", "nope"}, func([]string) ([]*row, error) {
		t.Error("find called without valid ids")
		return nil, nil
	}, func(r *row) string { return r.id })
	if err != nil || len(got) != 2 || got[0] != nil || got[1] != nil {
		t.Errorf("no valid ids: %v %v", got, err)
	}

	if _, err := uuids.Lookup([]string{id}, func([]string) ([]*row, error) { return nil, errors.New("db down") },
		func(r *row) string { return r.id }); err == nil {
		t.Error("find's error was dropped")
	}
}
