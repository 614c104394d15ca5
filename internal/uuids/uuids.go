// Package uuids spells the UUIDs that clients and events send the one way
// Postgres prints them. uuid.Parse accepts spellings (urn:uuid:…, braces,
// upper case) that Postgres rejects or prints differently, so services
// query and compare ids in this spelling.
package uuids

import "github.com/google/uuid"

// Canonical returns id in the spelling Postgres prints and true, or id
// unchanged and false when it is not a UUID.
func Canonical(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return id, false
	}
	return u.String(), true
}

// CanonicalAll spells each id of list canonically, for a query by many
// ids whose answer goes back in the order asked: each[i] is list[i]'s
// canonical spelling, "" where it is not a UUID, and valid holds the
// spellings of those that are.
func CanonicalAll(list []string) (each, valid []string) {
	each = make([]string, len(list))
	for i, id := range list {
		if c, ok := Canonical(id); ok {
			each[i] = c
			valid = append(valid, c)
		}
	}
	return each, valid
}
