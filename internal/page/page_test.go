package page_test

import (
	"errors"
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
