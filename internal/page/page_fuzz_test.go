package page_test

import (
	"errors"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/page"
)

// FuzzDecode: any string a client sends as `after` either decodes to a
// cursor that encodes back to the same position, or is ErrBadCursor —
// never a panic, never another error.
func FuzzDecode(f *testing.F) {
	good := page.Cursor{Time: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: "0193c1d4-0000-7000-8000-000000000001"}
	for _, s := range []string{
		"", good.Encode(), "bogus", "====", "MjAyNi0wMy0wMVQxMjowMDowMFp8", // "2026-03-01T12:00:00Z|"
		"MjAyNi0wMy0wMVQxMjowMDowMFp8JyBPUiAxPTE7IC0t", // "…|' OR 1=1; --"
		"fA",     // "|"
		"8J-YgA", // an emoji
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := page.Decode(s)
		if err != nil {
			if !errors.Is(err, page.ErrBadCursor) || c != nil {
				t.Fatalf("Decode(%q) = %v, %v", s, c, err)
			}
			return
		}
		if s == "" {
			if c != nil {
				t.Fatalf("empty cursor decoded to %+v", c)
			}
			return
		}
		again, err := page.Decode(c.Encode())
		if err != nil || !again.Time.Equal(c.Time) || again.ID != c.ID {
			t.Fatalf("round trip of %q: %+v -> %+v (%v)", s, c, again, err)
		}
	})
}

// FuzzParse: a connection's first/after arguments are accepted within
// bounds or refused with BAD_USER_INPUT.
func FuzzParse(f *testing.F) {
	f.Add(20, "", false)
	f.Add(0, "", true)
	f.Add(100, "x", true)
	f.Add(101, "", false)
	f.Add(-1, "", false)
	f.Add(int(^uint(0)>>1), "", false)
	f.Add(-int(^uint(0)>>1)-1, "", false)
	f.Fuzz(func(t *testing.T, first int, after string, hasAfter bool) {
		var a *string
		if hasAfter {
			a = &after
		}
		req, err := page.Parse(&first, a)
		if err != nil {
			var coded *gqlerr.Error
			if !errors.As(err, &coded) || coded.Code != gqlerr.BadUserInput || coded.Message == "" {
				t.Fatalf("Parse(%d, %q): %v, want a BAD_USER_INPUT error", first, after, err)
			}
			return
		}
		if req.Size != first || req.Size < 0 || req.Size > page.Max {
			t.Fatalf("Parse(%d) size %d", first, req.Size)
		}
	})
}
