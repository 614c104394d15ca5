// Package ptr has the helpers for optional values (pointers) that input
// normalization and stores share.
package ptr

import "strings"

// Value returns what p points at, or the zero value when p is nil.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// TrimSpace trims the string p points at, in place; nil stays nil.
func TrimSpace(p *string) {
	if p != nil {
		*p = strings.TrimSpace(*p)
	}
}
