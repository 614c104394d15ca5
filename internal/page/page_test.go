package page_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/page"
)

func TestCursorRoundTrip(t *testing.T) {
	c := page.Cursor{Time: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), ID: "0193c1d4-0000-7000-8000-000000000001"}
	got, err := page.Decode(c.Encode())
	if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
		t.Fatalf("round trip: got %+v, %v", got, err)
	}
}

func TestDecodeRejectsForeignCursors(t *testing.T) {
	for _, s := range []string{"!!", "bm90LWEtY3Vyc29y", "MjAyNi0wMS0wMnw"} {
		if _, err := page.Decode(s); !errors.Is(err, page.ErrBadCursor) {
			t.Errorf("Decode(%q) = %v, want ErrBadCursor", s, err)
		}
	}
	if c, err := page.Decode(""); c != nil || err != nil {
		t.Errorf("empty cursor: %v %v", c, err)
	}
}

func TestSize(t *testing.T) {
	n := 101
	if _, err := page.Size(&n); !errors.Is(err, page.ErrBadSize) {
		t.Errorf("101: %v", err)
	}
	if s, _ := page.Size(nil); s != page.Default {
		t.Errorf("default %d", s)
	}
}

type node struct{ c page.Cursor }

func (n node) Cursor() page.Cursor { return n.c }

type edge struct {
	node   node
	cursor string
}

func nodes(n int) []node {
	out := make([]node, n)
	for i := range out {
		out[i] = node{page.Cursor{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ID: fmt.Sprintf("0193c1d4-0000-7000-8000-%012d", i)}}
	}
	return out
}

func TestOfDropsTheExtraRow(t *testing.T) {
	req := page.Request{Size: 2}
	if pg := page.Of(nodes(3), req); len(pg.Nodes) != 2 || !pg.HasNextPage {
		t.Errorf("3 rows for 2: %+v", pg)
	}
	if pg := page.Of(nodes(2), req); len(pg.Nodes) != 2 || pg.HasNextPage {
		t.Errorf("2 rows for 2: %+v", pg)
	}
	if pg := page.Of(nodes(1), page.Request{Size: 0}); len(pg.Nodes) != 0 || !pg.HasNextPage {
		t.Errorf("first: 0 with a row: %+v", pg)
	}
}

func TestConnection(t *testing.T) {
	toEdge := func(n node, c string) edge { return edge{n, c} }
	first, after := 2, nodes(1)[0].Cursor().Encode()
	var asked page.Request
	edges, info, err := page.Connection(&first, &after, func(r page.Request) (*page.Page[node], error) {
		asked = r
		return page.Of(nodes(3), r), nil
	}, toEdge)
	if err != nil || asked.Size != 2 || asked.After == nil || asked.After.ID != nodes(1)[0].c.ID {
		t.Fatalf("asked %+v: %v", asked, err)
	}
	want := nodes(2)
	if len(edges) != 2 || edges[0].node != want[0] || edges[1].cursor != want[1].Cursor().Encode() {
		t.Errorf("edges %+v", edges)
	}
	if !info.HasNextPage || info.EndCursor == nil || *info.EndCursor != edges[1].cursor {
		t.Errorf("info %+v", info)
	}

	// An empty page: no edges (a list, not null) and no end cursor.
	edges, info, err = page.Connection(nil, nil, func(r page.Request) (*page.Page[node], error) {
		if r.Size != page.Default || r.After != nil {
			t.Errorf("defaults: %+v", r)
		}
		return &page.Page[node]{}, nil
	}, toEdge)
	if err != nil || edges == nil || len(edges) != 0 || info.HasNextPage || info.EndCursor != nil {
		t.Errorf("empty page: %#v %+v %v", edges, info, err)
	}

	// Bad arguments are refused before the list is read; its errors pass.
	bad, called := "bogus", false
	list := func(page.Request) (*page.Page[node], error) { called = true; return nil, errors.New("db down") }
	if _, _, err := page.Connection(nil, &bad, list, toEdge); err == nil || called {
		t.Errorf("bad cursor: %v, list called %v", err, called)
	}
	if _, _, err := page.Connection(nil, nil, list, toEdge); err == nil || err.Error() != "db down" {
		t.Errorf("list error: %v", err)
	}
}
