package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/testkit/systemtest"
)

const tokenFields = `accessToken refreshToken expiresAt userErrors { field message code }`

type tokens struct {
	AccessToken  *string
	RefreshToken *string
	UserErrors   []userError
}

// The whole life of a session, through the router: register, sign in, see
// yourself, rotate the refresh token (the old one stops working), sign out
// (refreshing stops working), and lose access when the token expires.
func TestSessionLifecycle(t *testing.T) {
	sys := systemtest.StartWith(t, map[string]string{"MART_ACCESS_TOKEN_TTL": "2s"})

	var reg struct {
		Register struct {
			User *struct{ ID, Email string }
			tokens
		}
	}
	sys.MustQuery(t, `mutation { register(input: {email: " Ada@Example.com ", password: "analytical-engine", name: "Ada", phone: "+44 20 7946 0000"}) {
		user { id email } `+tokenFields+` } }`, nil, &reg)
	if reg.Register.User == nil || reg.Register.User.Email != "ada@example.com" || reg.Register.AccessToken == nil {
		t.Fatalf("register: %+v", reg.Register)
	}

	var login struct{ Login tokens }
	sys.MustQuery(t, `mutation { login(input: {email: "ADA@example.com", password: "analytical-engine"}) { `+tokenFields+` } }`, nil, &login)
	if login.Login.AccessToken == nil || login.Login.RefreshToken == nil {
		t.Fatalf("login: %+v", login.Login)
	}
	ada := sys.As(*login.Login.AccessToken)

	var me struct {
		Me *struct{ ID, Email, Role string }
	}
	ada.MustQuery(t, `{ me { id email role } }`, nil, &me)
	if me.Me == nil || me.Me.ID != reg.Register.User.ID || me.Me.Role != "CUSTOMER" {
		t.Fatalf("me: %+v", me.Me)
	}

	refresh := func(token string) tokens {
		var out struct{ RefreshToken tokens }
		sys.MustQuery(t, `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { `+tokenFields+` } }`, map[string]any{"t": token}, &out)
		return out.RefreshToken
	}
	rotated := refresh(*login.Login.RefreshToken)
	if rotated.RefreshToken == nil || *rotated.RefreshToken == *login.Login.RefreshToken {
		t.Fatalf("refresh did not rotate: %+v", rotated)
	}
	if again := refresh(*login.Login.RefreshToken); again.AccessToken != nil || len(again.UserErrors) == 0 || again.UserErrors[0].Code != "INVALID_TOKEN" {
		t.Fatalf("rotated-out refresh token still works: %+v", again)
	}
	// Reusing a rotated token revoked its whole family, the new token too.
	if stolen := refresh(*rotated.RefreshToken); stolen.AccessToken != nil {
		t.Fatalf("refresh family survived token reuse: %+v", stolen)
	}

	var login2 struct{ Login tokens }
	sys.MustQuery(t, `mutation { login(input: {email: "ada@example.com", password: "analytical-engine"}) { `+tokenFields+` } }`, nil, &login2)
	var logout struct {
		Logout struct{ UserErrors []userError }
	}
	sys.MustQuery(t, `mutation($t: String!) { logout(input: {refreshToken: $t}) { userErrors { code } } }`, map[string]any{"t": *login2.Login.RefreshToken}, &logout)
	if len(logout.Logout.UserErrors) != 0 {
		t.Fatalf("logout: %+v", logout)
	}
	if after := refresh(*login2.Login.RefreshToken); after.AccessToken != nil {
		t.Fatal("refresh works after logout")
	}

	// Access tokens are not revocable; they expire (2s here, plus leeway).
	deadline := time.Now().Add(auth.Leeway + 10*time.Second)
	for {
		r := ada.Query(t, `{ me { id } }`, nil, nil)
		if r.Status == http.StatusUnauthorized && len(r.Errors) == 1 && r.Errors[0].Code() == "UNAUTHENTICATED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired token still accepted: %d %+v", r.Status, r.Errors)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Only admins manage the catalog: anonymous callers are UNAUTHENTICATED,
// customers FORBIDDEN, the bootstrapped admin succeeds.
func TestOnlyAdminsManageTheCatalog(t *testing.T) {
	sys := systemtest.Start(t)
	input := map[string]any{"input": map[string]any{"sku": "GUARD-1", "name": "Guarded", "price": map[string]any{"amount": 1, "currency": "USD"}}}
	customer, _ := sys.Customer(t, "buyer@example.com")

	for name, c := range map[string]systemtest.Client{"anonymous": {URL: sys.RouterURL}, "customer": customer} {
		r := c.Query(t, createProduct, input, nil)
		want := map[string]string{"anonymous": "UNAUTHENTICATED", "customer": "FORBIDDEN"}[name]
		if len(r.Errors) == 0 || r.Errors[0].Code() != want {
			t.Errorf("%s createProduct: %+v, want %s", name, r.Errors, want)
		}
	}
	var c connection
	sys.MustQuery(t, listProducts, nil, &c)
	if len(c.Products.Edges) != 0 {
		t.Fatalf("refused createProduct wrote: %+v", c)
	}
	if got := create(t, sys, input["input"].(map[string]any)); got.Product == nil {
		t.Fatalf("admin createProduct: %+v", got)
	}
}

// Tokens that do not verify are refused with UNAUTHENTICATED before any
// subgraph runs — by the router, and by a subgraph called directly.
func TestForgedTokensAreRefusedEverywhere(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := systemtest.StartWith(t, map[string]string{"MART_JWT_KEY_FILE": keyFile})

	sign := func(k auth.Key, audience string, ttl time.Duration, role auth.Role) string {
		i, err := auth.NewIssuer([]auth.Key{k}, "mart", audience, ttl)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := i.Issue(auth.Principal{UserID: "0193c1d4-0000-7000-8000-000000000001", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Sanity: the service really signs with the key file, so the forged
	// tokens below differ from a good one only in what they break.
	if _, err := auth.NewKeyVerifier([]auth.Key{key}, "mart", "mart-api").Verify(t.Context(), sys.Admin(t).Token); err != nil {
		t.Fatalf("admin token not signed with MART_JWT_KEY_FILE: %v", err)
	}
	good := sign(key, "mart-api", time.Minute, auth.Admin)
	other, _ := auth.GenerateKey()
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	sig[3] ^= 1
	b64 := base64.RawURLEncoding.EncodeToString
	forged := map[string]string{
		"tampered signature": parts[0] + "." + parts[1] + "." + string(sig),
		"wrong key":          sign(other, "mart-api", time.Minute, auth.Admin),
		"expired":            sign(key, "mart-api", -time.Minute, auth.Admin),
		"other audience":     sign(key, "another-api", time.Minute, auth.Admin),
		"alg none":           b64([]byte(`{"alg":"none","typ":"JWT","kid":"`+key.ID+`"}`)) + "." + parts[1] + ".",
	}
	input := map[string]any{"input": map[string]any{"sku": "FORGED-1", "name": "Forged", "price": map[string]any{"amount": 1, "currency": "USD"}}}
	for _, endpoint := range []struct{ name, url string }{{"router", sys.RouterURL}, {"product subgraph", sys.Services["product"]}} {
		for name, tok := range forged {
			r := systemtest.Client{URL: endpoint.url, Token: tok}.Query(t, createProduct, input, nil)
			if r.Status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].Code() != "UNAUTHENTICATED" {
				t.Errorf("%s, %s: status %d %+v", endpoint.name, name, r.Status, r.Errors)
			}
		}
		// No token at all, straight to the subgraph: still refused.
		r := systemtest.Client{URL: endpoint.url}.Query(t, createProduct, input, nil)
		if len(r.Errors) == 0 || r.Errors[0].Code() != "UNAUTHENTICATED" {
			t.Errorf("%s without a token: %+v", endpoint.name, r.Errors)
		}
	}
	var c connection
	sys.MustQuery(t, listProducts, nil, &c)
	if len(c.Products.Edges) != 0 {
		t.Fatalf("a forged token wrote: %+v", c)
	}
	// The good token, signed with the real key, does work.
	if r := sys.As(good).Query(t, createProduct, input, nil); len(r.Errors) != 0 {
		t.Fatalf("good token refused: %+v", r.Errors)
	}
}

// The router publishes the user service's keys at the standard path, and
// the tokens it issues name one of them.
func TestRouterServesTheJWKS(t *testing.T) {
	sys := systemtest.Start(t)
	resp, err := http.Get(strings.TrimSuffix(sys.RouterURL, "/graphql") + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []struct{ Kid, Kty, Crv, Alg string }
	}
	if err := json.Unmarshal(body, &set); err != nil || resp.StatusCode != http.StatusOK || len(set.Keys) == 0 {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(sys.Admin(t).Token, ".")[0])
	var h struct{ Kid, Alg string }
	_ = json.Unmarshal(header, &h)
	found := false
	for _, k := range set.Keys {
		found = found || (k.Kid == h.Kid && k.Kty == "OKP" && k.Crv == "Ed25519")
	}
	if !found || h.Alg != "EdDSA" {
		t.Fatalf("token header %+v not matched by the JWKS %s", h, body)
	}
}

// Bad registrations get userErrors naming the field and write nothing.
func TestBadRegistrationsWriteNothing(t *testing.T) {
	sys := systemtest.Start(t)
	cases := []struct {
		name  string
		input map[string]any
		field string
	}{
		{"invalid email", map[string]any{"email": "not-an-email", "password": "long-enough-pw", "name": "X"}, "email"},
		{"short password", map[string]any{"email": "a@example.com", "password": "short", "name": "X"}, "password"},
		{"password is the email", map[string]any{"email": "samesame@example.com", "password": "samesame@example.com", "name": "X"}, "password"},
		{"10 KB name", map[string]any{"email": "b@example.com", "password": "long-enough-pw", "name": strings.Repeat("n", 10<<10)}, "name"},
		{"SQL in the email", map[string]any{"email": "x'; DROP TABLE users; --@example.com", "password": "long-enough-pw", "name": "X"}, "email"},
	}
	for _, c := range cases {
		var out struct {
			Register struct {
				User       *struct{ ID string }
				UserErrors []userError
			}
		}
		sys.MustQuery(t, `mutation($in: RegisterInput!) { register(input: $in) { user { id } userErrors { field message code } } }`,
			map[string]any{"in": c.input}, &out)
		errs := out.Register.UserErrors
		if out.Register.User != nil || len(errs) == 0 || errs[0].Field[len(errs[0].Field)-1] != c.field {
			t.Errorf("%s: %+v", c.name, out.Register)
		}
	}
	// A SQL-looking name is just a name, stored as typed.
	const bobby = "Robert'); DROP TABLE users;--"
	var reg struct {
		Register struct{ User *struct{ Name string } }
	}
	sys.MustQuery(t, `mutation($n: String!) { register(input: {email: "bobby@example.com", password: "long-enough-pw", name: $n}) { user { name } } }`,
		map[string]any{"n": bobby}, &reg)
	if reg.Register.User == nil || reg.Register.User.Name != bobby {
		t.Fatalf("register bobby: %+v", reg.Register)
	}
	var users struct {
		Users struct {
			Edges []struct{ Node struct{ Email string } }
		}
	}
	sys.Admin(t).MustQuery(t, `{ users(first: 100) { edges { node { email } } } }`, nil, &users)
	if len(users.Users.Edges) != 2 {
		t.Fatalf("want only the admin and bobby, got %+v", users.Users.Edges)
	}
}
