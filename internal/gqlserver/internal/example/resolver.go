package example

// Resolver is the root resolver. It holds nothing: the data is fixed.
type Resolver struct{}

// products are the example's data, newest first.
var products = []*Product{
	{ID: "p1", Name: "Mug"},
	{ID: "p2", Name: "Teapot"},
}

// productByID returns the fixed product with id, or nil.
func productByID(id string) *Product {
	for _, p := range products {
		if p.ID == id {
			return p
		}
	}
	return nil
}
