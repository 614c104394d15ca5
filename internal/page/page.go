// Package page implements Relay cursor pagination over keyset queries
// (DESIGN §3): a cursor is the (created_at, id) of the last row seen, so a
// page is an index range scan, never OFFSET.
package page

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// Max is the largest page a client may ask for; Default applies when the
// client does not say.
const (
	Max     = 100
	Default = 20
)

// ErrBadCursor is returned for a cursor this service did not issue.
var ErrBadCursor = errors.New("after is not a valid cursor")

// ErrBadSize is returned when first is outside 0..Max.
var ErrBadSize = errors.New("first must be between 0 and 100")

// Cursor is a position in a list ordered by (Time, ID).
type Cursor struct {
	Time time.Time
	ID   string
}

// Encode returns the opaque cursor string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Time.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

// Decode parses a cursor string; "" means the start of the list (nil).
func Decode(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || id == "" {
		return nil, ErrBadCursor
	}
	return &Cursor{Time: t, ID: id}, nil
}

// Size returns the page size for an optional first argument.
func Size(first *int) (int, error) {
	if first == nil {
		return Default, nil
	}
	if *first < 0 || *first > Max {
		return 0, ErrBadSize
	}
	return *first, nil
}
