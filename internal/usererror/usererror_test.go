package usererror_test

import (
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
)

func TestOrEmptyIsNeverNil(t *testing.T) {
	if errs := usererror.OrEmpty(nil); errs == nil || len(errs) != 0 {
		t.Errorf("OrEmpty(nil) = %#v", errs)
	}
	one := []usererror.UserError{usererror.New(usererror.Invalid, "bad")}
	if errs := usererror.OrEmpty(one); len(errs) != 1 || &errs[0] != &one[0] {
		t.Errorf("OrEmpty(one) = %#v", errs)
	}
}
