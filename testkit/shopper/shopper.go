// Package shopper is a client of the mart's public API for load drivers
// (the replica and fault-injection suites): it signs in, stocks the
// catalog, places, follows and cancels orders through the router, and
// returns failures as errors, so any goroutine may use it. It retries only
// where a real client would: placing an order again with the same
// idempotency key after a transport error.
package shopper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/onlinemart/mart/testkit/gqltest"
)

// HTTP bounds every request, so a request to a process killed mid-flight
// fails instead of hanging the driver.
var HTTP = &http.Client{Timeout: 20 * time.Second}

// UserError is a mutation's userErrors entry.
type UserError struct {
	Field   []string
	Message string
	Code    string
}

// Call sends one GraphQL operation to url and decodes its data into out.
func Call(ctx context.Context, url, token, query string, vars map[string]any, out any) error {
	return gqltest.Call(ctx, HTTP, url, token, query, vars, out)
}

// The operations a shopper sends.
const (
	loginMutation    = `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken userErrors { field message code } } }`
	registerMutation = `mutation($e: String!, $p: String!, $n: String!) { register(input: {email: $e, password: $p, name: $n}) { user { id } accessToken userErrors { field message code } } }`
	createProduct    = `mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { field message code } } }`
	adjustStock      = `mutation($id: ID!, $n: Int!, $key: String!) {
  adjustStock(input: {productId: $id, delta: $n, reason: "receipt", idempotencyKey: $key}) { userErrors { field message code } } }`
	placeOrder  = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { order { id } userErrors { field message code } } }`
	cancelOrder = `mutation($id: ID!) { cancelOrder(input: {orderId: $id}) { order { status } userErrors { field message code } } }`
	orderStatus = `query($id: ID!) { order(id: $id) { status } }`
)

// Login signs in and returns the token, or the first user error's code.
func Login(ctx context.Context, url, email, password string) (token, code string, err error) {
	var out struct {
		Login struct {
			AccessToken *string
			UserErrors  []UserError
		}
	}
	if err := Call(ctx, url, "", loginMutation, map[string]any{"e": email, "p": password}, &out); err != nil {
		return "", "", err
	}
	if out.Login.AccessToken != nil {
		return *out.Login.AccessToken, "", nil
	}
	if len(out.Login.UserErrors) == 0 {
		return "", "", errors.New("login: neither token nor user error")
	}
	return "", out.Login.UserErrors[0].Code, nil
}

// Register creates a customer and returns their id and token.
func Register(ctx context.Context, url, email, password, name string) (id, token string, err error) {
	var out struct {
		Register struct {
			User        *struct{ ID string }
			AccessToken *string
			UserErrors  []UserError
		}
	}
	if err := Call(ctx, url, "", registerMutation, map[string]any{"e": email, "p": password, "n": name}, &out); err != nil {
		return "", "", err
	}
	if out.Register.User == nil || out.Register.AccessToken == nil {
		return "", "", fmt.Errorf("register %s: %+v", email, out.Register.UserErrors)
	}
	return out.Register.User.ID, *out.Register.AccessToken, nil
}

// CreateProduct creates a product as the admin and receives units of it
// into stock, waiting (up to a minute) until inventory has heard of it.
func CreateProduct(ctx context.Context, url, admin, sku string, price int64, units int) (string, error) {
	var out struct {
		CreateProduct struct {
			Product    *struct{ ID string }
			UserErrors []UserError
		}
	}
	in := map[string]any{"sku": sku, "name": "Product " + sku, "price": map[string]any{"amount": price, "currency": "USD"}}
	if err := Call(ctx, url, admin, createProduct, map[string]any{"input": in}, &out); err != nil {
		return "", fmt.Errorf("createProduct %s: %w", sku, err)
	}
	if out.CreateProduct.Product == nil {
		return "", fmt.Errorf("createProduct %s: %+v", sku, out.CreateProduct.UserErrors)
	}
	id := out.CreateProduct.Product.ID
	deadline := time.Now().Add(time.Minute)
	for {
		var adj struct {
			AdjustStock struct{ UserErrors []UserError }
		}
		err := Call(ctx, url, admin, adjustStock, map[string]any{"id": id, "n": units, "key": "receipt-" + sku}, &adj)
		if err == nil && len(adj.AdjustStock.UserErrors) == 0 {
			return id, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", fmt.Errorf("stock for %s: %w", sku, err)
			}
			return "", fmt.Errorf("stock for %s: %+v", sku, adj.AdjustStock.UserErrors)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Order is what to place.
type Order struct {
	Product      string
	Quantity     int
	PaymentToken string // default tok_visa
	Key          string // idempotency key
}

// PlaceOrder places o, retrying with the same idempotency key through
// transport errors (onErr sees each) and while the order service has not
// heard of the product yet, for up to two minutes. It returns the order
// id, or the user errors of a refusal.
func PlaceOrder(ctx context.Context, url, token string, o Order, onErr func(error)) (string, []UserError, error) {
	if o.PaymentToken == "" {
		o.PaymentToken = "tok_visa"
	}
	in := map[string]any{
		"lines":           []any{map[string]any{"productId": o.Product, "quantity": o.Quantity}},
		"shippingAddress": map[string]any{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
		"paymentToken":    o.PaymentToken,
		"idempotencyKey":  o.Key,
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out struct {
			PlaceOrder struct {
				Order      *struct{ ID string }
				UserErrors []UserError
			}
		}
		err := Call(ctx, url, token, placeOrder, map[string]any{"in": in}, &out)
		switch {
		case err == nil && out.PlaceOrder.Order != nil:
			return out.PlaceOrder.Order.ID, nil, nil
		case err == nil && (len(out.PlaceOrder.UserErrors) == 0 || out.PlaceOrder.UserErrors[0].Code != "NOT_FOUND"):
			return "", out.PlaceOrder.UserErrors, fmt.Errorf("placeOrder: %+v", out.PlaceOrder.UserErrors)
		case err != nil && onErr != nil:
			onErr(err)
		}
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", nil, fmt.Errorf("placeOrder: no answer within 2 minutes: %w", err)
			}
			return "", nil, fmt.Errorf("placeOrder: no answer within 2 minutes: %+v", out.PlaceOrder.UserErrors)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// OrderStatus returns the order's status ("" when the order is not
// visible).
func OrderStatus(ctx context.Context, url, token, id string) (string, error) {
	var out struct{ Order *struct{ Status string } }
	if err := Call(ctx, url, token, orderStatus, map[string]any{"id": id}, &out); err != nil {
		return "", err
	}
	if out.Order == nil {
		return "", nil
	}
	return out.Order.Status, nil
}

// CancelOrder asks to cancel the order and returns its status after, or
// the user errors of a refusal.
func CancelOrder(ctx context.Context, url, token, id string) (string, []UserError, error) {
	var out struct {
		CancelOrder struct {
			Order      *struct{ Status string }
			UserErrors []UserError
		}
	}
	if err := Call(ctx, url, token, cancelOrder, map[string]any{"id": id}, &out); err != nil {
		return "", nil, err
	}
	if out.CancelOrder.Order == nil {
		return "", out.CancelOrder.UserErrors, nil
	}
	return out.CancelOrder.Order.Status, out.CancelOrder.UserErrors, nil
}

// Follow polls the order every 150 ms until it is CONFIRMED or CANCELLED
// and returns that status, or "" when ctx ends or wait has passed first.
// onErr sees each failed poll.
func Follow(ctx context.Context, url, token, id string, wait time.Duration, onErr func(error)) string {
	deadline := time.Now().Add(wait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(150 * time.Millisecond)
		st, err := OrderStatus(ctx, url, token, id)
		if err != nil {
			if ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
			continue
		}
		if st == "CONFIRMED" || st == "CANCELLED" {
			return st
		}
	}
	return ""
}
