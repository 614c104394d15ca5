package ptr_test

import (
	"testing"

	"github.com/onlinemart/mart/internal/ptr"
)

func TestValue(t *testing.T) {
	s := "x"
	if ptr.Value(&s) != "x" || ptr.Value[string](nil) != "" || ptr.Value[int](nil) != 0 {
		t.Error("Value")
	}
}

func TestTrimSpace(t *testing.T) {
	s := "  a b \n"
	ptr.TrimSpace(&s)
	ptr.TrimSpace(nil)
	if s != "a b" {
		t.Errorf("TrimSpace: %q", s)
	}
}
