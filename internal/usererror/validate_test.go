package usererror_test

import (
	"reflect"
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
)

type money struct {
	Amount   int64  `json:"amount" validate:"gte=0"`
	Currency string `json:"currency" validate:"required,iso4217"`
}

type input struct {
	Name  string  `json:"name" validate:"required,max=5"`
	Note  *string `json:"note" validate:"omitnil,min=2"`
	Price money   `json:"price"`
}

func TestValidateNamesFieldsAndCodes(t *testing.T) {
	short := "x"
	got := usererror.Validate("input", input{Name: "toolong", Note: &short, Price: money{Amount: -1, Currency: "usd"}})
	want := []usererror.UserError{
		{Field: []string{"input", "name"}, Message: "name must be at most 5 characters", Code: usererror.TooLong},
		{Field: []string{"input", "note"}, Message: "note must be at least 2 characters", Code: usererror.TooShort},
		{Field: []string{"input", "price", "amount"}, Message: "amount must be 0 or more", Code: usererror.OutOfRange},
		{Field: []string{"input", "price", "currency"}, Message: "currency must be an ISO 4217 currency code such as USD", Code: usererror.Invalid},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestValidateAcceptsGoodInputAndNilOptionals(t *testing.T) {
	if errs := usererror.Validate("input", input{Name: "mug", Price: money{Amount: 0, Currency: "EUR"}}); errs != nil {
		t.Fatalf("unexpected errors: %+v", errs)
	}
}

func TestRegisterCustomTag(t *testing.T) {
	usererror.Register("even", func(s string) bool { return len(s)%2 == 0 }, "must have an even length")
	type in struct {
		Code string `json:"code" validate:"even"`
	}
	errs := usererror.Validate("input", in{Code: "abc"})
	if len(errs) != 1 || errs[0].Message != "code must have an even length" || errs[0].Code != usererror.Invalid {
		t.Fatalf("got %+v", errs)
	}
}

func TestListItemsGetTheirIndexInThePath(t *testing.T) {
	type line struct {
		Quantity int `json:"quantity" validate:"gte=1"`
	}
	type order struct {
		Lines []line `json:"lines" validate:"dive"`
	}
	errs := usererror.Validate("input", order{Lines: []line{{1}, {1}, {0}}})
	if len(errs) != 1 || !reflect.DeepEqual(errs[0].Field, []string{"input", "lines", "2", "quantity"}) {
		t.Fatalf("got %+v", errs)
	}
}
