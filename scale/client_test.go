package scale_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/onlinemart/mart/internal/gqltest"
)

// httpClient bounds every request, so a request to a replica killed
// mid-flight fails instead of hanging the driver.
var httpClient = &http.Client{Timeout: 20 * time.Second}

type userError struct {
	Field   []string
	Message string
	Code    string
}

// call sends one GraphQL operation to url and decodes its data into out;
// failures are errors (gqltest.Call), so any goroutine may call it.
func call(ctx context.Context, url, token, query string, vars map[string]any, out any) error {
	return gqltest.Call(ctx, httpClient, url, token, query, vars, out)
}

const (
	loginMutation    = `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken userErrors { field message code } } }`
	registerMutation = `mutation($e: String!, $p: String!) { register(input: {email: $e, password: $p, name: "Scale Customer"}) { user { id } accessToken userErrors { field message code } } }`
	createProduct    = `mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { field message code } } }`
	adjustStock      = `mutation($id: ID!, $n: Int!, $key: String!) {
  adjustStock(input: {productId: $id, delta: $n, reason: "receipt", idempotencyKey: $key}) { userErrors { field message code } } }`
	placeOrder  = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { order { id } userErrors { field message code } } }`
	orderStatus = `query($id: ID!) { order(id: $id) { status } }`
	meQuery     = `{ me { id email } }`
)

type loginResult struct {
	Login struct {
		AccessToken *string
		UserErrors  []userError
	}
}

// login signs in at url and returns the token, or the first user error
// code.
func login(ctx context.Context, url, email, password string) (token, code string, err error) {
	var out loginResult
	if err := call(ctx, url, "", loginMutation, map[string]any{"e": email, "p": password}, &out); err != nil {
		return "", "", err
	}
	if out.Login.AccessToken != nil {
		return *out.Login.AccessToken, "", nil
	}
	if len(out.Login.UserErrors) == 0 {
		return "", "", fmt.Errorf("login: neither token nor user error")
	}
	return "", out.Login.UserErrors[0].Code, nil
}

// register creates a customer and returns their id and token.
func register(ctx context.Context, url, email, password string) (id, token string, err error) {
	var out struct {
		Register struct {
			User        *struct{ ID string }
			AccessToken *string
			UserErrors  []userError
		}
	}
	if err := call(ctx, url, "", registerMutation, map[string]any{"e": email, "p": password}, &out); err != nil {
		return "", "", err
	}
	if out.Register.User == nil || out.Register.AccessToken == nil {
		return "", "", fmt.Errorf("register %s: %+v", email, out.Register.UserErrors)
	}
	return out.Register.User.ID, *out.Register.AccessToken, nil
}

func orderInput(product, key string) map[string]any {
	return map[string]any{
		"lines":           []any{map[string]any{"productId": product, "quantity": 1}},
		"shippingAddress": map[string]any{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
		"paymentToken":    "tok_visa",
		"idempotencyKey":  key,
	}
}

// place places a one-unit order, retrying with the same idempotency key
// through transport errors (a replica killed mid-request) and while the
// order service has not heard of the product yet. It returns the order id.
func place(ctx context.Context, url, token, product, key string, onErr func(error)) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out struct {
			PlaceOrder struct {
				Order      *struct{ ID string }
				UserErrors []userError
			}
		}
		err := call(ctx, url, token, placeOrder, map[string]any{"in": orderInput(product, key)}, &out)
		switch {
		case err == nil && out.PlaceOrder.Order != nil:
			return out.PlaceOrder.Order.ID, nil
		case err == nil && (len(out.PlaceOrder.UserErrors) == 0 || out.PlaceOrder.UserErrors[0].Code != "NOT_FOUND"):
			return "", fmt.Errorf("placeOrder: %+v", out.PlaceOrder.UserErrors)
		case err != nil && onErr != nil:
			onErr(err)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("placeOrder: no answer within 2 minutes: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
