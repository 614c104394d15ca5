// Package page implements Relay cursor pagination over keyset queries, for
// every connection field of the API: a cursor is the (created_at, id) of
// the last row seen, so a page is an index range scan, never OFFSET, and
// rows inserted meanwhile neither shift nor repeat the pages after it.
package page

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/gqlerr"
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
	u, uerr := uuid.Parse(id)
	if !ok || err != nil || uerr != nil {
		return nil, ErrBadCursor // ids are UUIDs everywhere
	}
	// The canonical spelling: a forged cursor may spell the id in a form
	// (urn:uuid:…) that uuid.Parse accepts and Postgres does not.
	return &Cursor{Time: t, ID: u.String()}, nil
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

// Request is a connection's validated first and after arguments.
type Request struct {
	Size  int
	After *Cursor // nil: from the start
}

// Parse reads a connection's first and after arguments. Its errors are
// client errors (BAD_USER_INPUT).
func Parse(first *int, after *string) (Request, error) {
	size, err := Size(first)
	if err != nil {
		return Request{}, gqlerr.New(gqlerr.BadUserInput, err.Error())
	}
	var cur *Cursor
	if after != nil {
		if cur, err = Decode(*after); err != nil {
			return Request{}, gqlerr.New(gqlerr.BadUserInput, err.Error())
		}
	}
	return Request{Size: size, After: cur}, nil
}

// Keyset narrows q to the requested page of a list ordered newest first
// by (created_at, id), both indexed: rows after the cursor, and one more
// than the page holds, to learn whether another page follows.
func (r Request) Keyset(q *bun.SelectQuery) *bun.SelectQuery {
	q = q.OrderExpr("created_at DESC, id DESC").Limit(int64(r.Size) + 1)
	if r.After != nil {
		q = q.Where("(created_at, id) < (?, ?)", r.After.Time, r.After.ID)
	}
	return q
}

// Node is what a list holds: a row ordered by (created_at, id), as Keyset
// pages through it.
type Node interface {
	Cursor() Cursor // the row's (created_at, id)
}

// Page is one page of a list, newest first, and whether another follows.
type Page[N Node] struct {
	Nodes       []N
	HasNextPage bool
}

// Of returns the page that a query narrowed by r.Keyset read as rows: it
// drops the extra row Keyset asked for and notes whether it was there.
func Of[N Node](rows []N, r Request) *Page[N] {
	if len(rows) > r.Size {
		return &Page[N]{Nodes: rows[:r.Size], HasNextPage: true}
	}
	return &Page[N]{Nodes: rows}
}

// Info is a connection's pageInfo: every subgraph's GraphQL PageInfo is
// bound to it.
type Info struct {
	HasNextPage bool
	EndCursor   *string // the last edge's cursor; nil for an empty page
}

// Connection answers a connection field: it reads the first and after
// arguments (refusing bad ones as Parse does, before list runs), has list
// read the page they ask for, and returns its nodes as edges, each made
// by edge with the node's cursor, and the connection's pageInfo.
func Connection[N Node, E any](first *int, after *string, list func(Request) (*Page[N], error), edge func(node N, cursor string) E) ([]E, *Info, error) {
	req, err := Parse(first, after)
	if err != nil {
		return nil, nil, err
	}
	pg, err := list(req)
	if err != nil {
		return nil, nil, err
	}
	edges := make([]E, len(pg.Nodes))
	info := &Info{HasNextPage: pg.HasNextPage}
	for i, n := range pg.Nodes {
		c := n.Cursor().Encode()
		edges[i], info.EndCursor = edge(n, c), &c
	}
	return edges, info, nil
}
