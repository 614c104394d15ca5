package core

import (
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/usererror/usererrortest"
)

func optional(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

// FuzzCreateInput: createProduct's input, normalized and validated as
// Catalog.Create does before touching the database.
func FuzzCreateInput(f *testing.F) {
	f.Add("MUG-1", "Mug", "A mug", true, "kitchen", true, int64(1250), "usd")
	f.Add("", "", "", false, "", false, int64(-1), "XYZ")
	f.Add("no spaces!", strings.Repeat("n", 201), strings.Repeat("d", 5001), true, strings.Repeat("c", 101), true, int64(1e12+1), "EUR")
	f.Add("x'; DROP TABLE products; --", "{{.Name}}", "<script>alert(1)</script>", true, "${7*7}", true, int64(0), " gbp ")
	f.Add("\u202eGUM", "Mu\u200bg", "\x00", true, "\xff\xfe", true, int64(-9223372036854775808), "\u0130SD")
	f.Fuzz(func(t *testing.T, sku, name, desc string, hasDesc bool, category string, hasCat bool, amount int64, currency string) {
		in := CreateInput{SKU: sku, Name: name, Description: optional(desc, hasDesc), Category: optional(category, hasCat),
			Price: Money{Amount: amount, Currency: currency}}
		in.normalize()
		errs := usererror.Validate("input", in)
		usererrortest.Check(t, errs)
		if len(errs) > 0 {
			return
		}
		// Accepted: normalizing again changes nothing, and the stored
		// values are within the schema's promises.
		again := in
		again.normalize()
		if again.SKU != in.SKU || again.Name != in.Name || again.Price != in.Price {
			t.Fatalf("normalize is not idempotent: %+v vs %+v", in, again)
		}
		if !skuPattern.MatchString(in.SKU) || in.SKU != strings.ToUpper(in.SKU) || in.Price.Amount < 0 || len(in.Price.Currency) != 3 {
			t.Fatalf("accepted %+v", in)
		}
	})
}

// FuzzUpdateInput: updateProduct's input.
func FuzzUpdateInput(f *testing.F) {
	f.Add("0193c1d4-0000-7000-8000-000000000001", "Mug", true, "", false, int64(5), "USD", true)
	f.Add("not-a-uuid", "", true, "x", true, int64(-5), "", true)
	f.Add(" 0193C1D4-0000-7000-8000-000000000001 ", "\t", true, "", false, int64(0), "usd", false)
	f.Add("{0193c1d4-0000-7000-8000-000000000001}", "A", true, "", false, int64(0), "", false)
	f.Fuzz(func(t *testing.T, id, name string, hasName bool, category string, hasCat bool, amount int64, currency string, hasPrice bool) {
		in := UpdateInput{ID: id, Name: optional(name, hasName), Category: optional(category, hasCat)}
		if hasPrice {
			in.Price = &Money{Amount: amount, Currency: currency}
		}
		in.normalize()
		errs := usererror.Validate("input", in)
		usererrortest.Check(t, errs)
		if len(errs) == 0 && in.Price != nil && (in.Price.Amount < 0 || in.Price.Amount > 1e12) {
			t.Fatalf("accepted price %+v", in.Price)
		}
	})
}

// FuzzFilter: the products listing filter.
func FuzzFilter(f *testing.F) {
	f.Add("mug", true, int64(0), int64(100))
	f.Add(strings.Repeat("%", 201), true, int64(-1), int64(-1))
	f.Add("' OR 1=1 --", true, int64(9223372036854775807), int64(0))
	f.Fuzz(func(t *testing.T, search string, hasSearch bool, minPrice, maxPrice int64) {
		in := Filter{Search: optional(search, hasSearch), MinPrice: &minPrice, MaxPrice: &maxPrice}
		errs := usererror.Validate("input", in)
		usererrortest.Check(t, errs)
		if len(errs) == 0 && (minPrice < 0 || maxPrice < 0) {
			t.Fatalf("accepted negative prices %d %d", minPrice, maxPrice)
		}
	})
}
