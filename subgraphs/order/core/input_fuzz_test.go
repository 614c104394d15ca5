package core

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/usererror/usererrortest"
)

// FuzzPlaceInput: placeOrder's input as JSON (the shape gqlgen hands the
// resolver), normalized and validated as Orders.Place does before it
// reads the catalog. Never a panic; every rejection names a field; an
// accepted input is within the documented bounds and normalizing it
// again changes nothing.
func FuzzPlaceInput(f *testing.F) {
	addr := `"shippingAddress":{"name":"Ada","line1":"12 St James's Square","city":"London","postalCode":"SW1Y 4JH","country":"gb"}`
	for _, s := range []string{
		`{"lines":[{"productId":"0193c1d4-0000-7000-8000-000000000001","quantity":1}],` + addr + `,"paymentToken":"tok_visa"}`,
		`{"lines":[{"productId":"0193C1D4-0000-7000-8000-000000000001","quantity":1},{"productId":"0193c1d4-0000-7000-8000-000000000001","quantity":2}],` + addr + `,"paymentToken":"tok_visa","idempotencyKey":" k "}`,
		`{"lines":[],` + addr + `,"paymentToken":""}`,
		`{"lines":[{"productId":"x","quantity":0},{"productId":"","quantity":101}],"shippingAddress":{"country":"XX","line2":"  "},"paymentToken":"tok","idempotencyKey":""}`,
		`{"lines":[{"productId":"'; DROP TABLE orders; --","quantity":-2147483648}],"shippingAddress":{"name":"{{.Name}}","line1":"\u202e","city":"\u0000","postalCode":"` + strings.Repeat("9", 21) + `","country":"de"},"paymentToken":"` + strings.Repeat("t", 513) + `"}`,
		`{"lines":null}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in PlaceInput
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		callers, snapshot := in.Lines, slices.Clone(in.Lines)
		in.normalize()
		if !slices.Equal(callers, snapshot) {
			t.Fatal("normalize changed the caller's lines in place")
		}
		errs := usererror.Validate("input", in)
		if len(errs) == 0 {
			errs = duplicateProducts(in.Lines)
		}
		usererrortest.Check(t, errs)
		if len(errs) > 0 {
			return
		}
		if len(in.Lines) < 1 || len(in.Lines) > 50 || in.PaymentToken == "" || len(in.ShippingAddress.Country) != 2 {
			t.Fatalf("accepted %+v", in)
		}
		for _, l := range in.Lines {
			if l.Quantity < 1 || l.Quantity > 100 {
				t.Fatalf("accepted quantity %d", l.Quantity)
			}
		}
		again := in
		again.normalize()
		if !slices.Equal(again.Lines, in.Lines) || again.ShippingAddress.Country != in.ShippingAddress.Country || again.PaymentToken != in.PaymentToken {
			t.Fatalf("normalize is not idempotent: %+v vs %+v", in, again)
		}
	})
}

// FuzzOrderIDInput: cancelOrder, markShipped and markDelivered take an
// order id that must be a UUID.
func FuzzOrderIDInput(f *testing.F) {
	for _, s := range []string{"0193c1d4-0000-7000-8000-000000000001", "", "1' OR '1'='1", "0193c1d4000070008000000000000001", "\u0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		usererrortest.Check(t, usererror.Validate("input", OrderIDInput{OrderID: id}))
	})
}
