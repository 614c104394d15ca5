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

// Lookup answers a query by many ids (a federation entity batch) in the
// order asked, with one call of find however many ids: find reads the rows
// of the ids that are UUIDs, given in the canonical spelling, and is not
// called when there are none. Lookup returns each id's row by key, nil
// where there is none or the id is not a UUID.
func Lookup[T any](ids []string, find func(valid []string) ([]*T, error), key func(*T) string) ([]*T, error) {
	out := make([]*T, len(ids))
	each := make([]string, len(ids))
	var valid []string
	for i, id := range ids {
		if c, ok := Canonical(id); ok {
			each[i] = c
			valid = append(valid, c)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	found, err := find(valid)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]*T, len(found))
	for _, row := range found {
		byKey[key(row)] = row
	}
	for i, c := range each {
		if c != "" {
			out[i] = byKey[c]
		}
	}
	return out, nil
}
