package router

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/onlinemart/mart/internal/auth"
)

const (
	testIssuer   = "https://user.mart.test"
	testAudience = "mart"
)

// keyService stands in for the user service: it publishes a JWK set that a
// test can change (key rotation) and issues tokens.
type keyService struct {
	*httptest.Server
	mu        sync.Mutex
	published []auth.Key
	fetches   atomic.Int32
}

func newKeyService(t *testing.T, keys ...auth.Key) *keyService {
	t.Helper()
	ks := &keyService{published: keys}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		body := auth.JWKS(ks.published)
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyService) publish(keys ...auth.Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.published = keys
}

func (ks *keyService) jwksURL() string { return ks.URL + "/.well-known/jwks.json" }

func newKey(t *testing.T) auth.Key {
	t.Helper()
	k, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue returns a token for a customer signed by key.
func issue(t *testing.T, key auth.Key, issuer, audience string, ttl time.Duration) string {
	t.Helper()
	iss, err := auth.NewIssuer([]auth.Key{key}, issuer, audience, ttl)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := iss.Issue(auth.Principal{UserID: "u1", Role: auth.Customer})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// handmade builds a JWT by hand: signed with priv under the given header,
// or with an empty signature when priv is nil.
func handmade(t *testing.T, header map[string]any, priv ed25519.PrivateKey) string {
	t.Helper()
	now := time.Now().Unix()
	claims := map[string]any{"sub": "u1", "role": "CUSTOMER", "iss": testIssuer, "aud": []string{testAudience}, "iat": now, "nbf": now, "exp": now + 300}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signingInput := enc(header) + "." + enc(claims)
	var sig []byte
	if priv != nil {
		sig = ed25519.Sign(priv, []byte(signingInput))
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// startAuthGraph runs the router, verifying tokens against ks, in front of
// the fixture subgraphs.
func startAuthGraph(t *testing.T, ks *keyService) *testGraph {
	t.Helper()
	return startGraph(t, func(o *Options) {
		o.Verifier = auth.NewVerifier(ks.jwksURL(), testIssuer, testAudience)
		o.JWKSURL = ks.jwksURL()
	})
}

func TestValidTokenReachesSubgraphs(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	g := startAuthGraph(t, newKeyService(t, key))
	tokens := map[string]string{
		"issued":   issue(t, key, testIssuer, testAudience, time.Minute),
		"handmade": handmade(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": key.ID}, key.Private),
	}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			res := postQuery(t, g.server, `{ product(id: "p1") { name stock } }`, nil, "Authorization", "Bearer "+token)
			if res.status != http.StatusOK || len(res.Errors) > 0 {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			calls := g.products.recorded()
			if got := calls[len(calls)-1].Header.Get("Authorization"); got != "Bearer "+token {
				t.Fatalf("products subgraph got Authorization %q", got)
			}
			calls = g.inventory.recorded()
			if got := calls[len(calls)-1].Header.Get("Authorization"); got != "Bearer "+token {
				t.Fatalf("inventory subgraph got Authorization %q", got)
			}
		})
	}
	// No token is no error: subgraphs decide per field.
	if res := postQuery(t, g.server, `{ product(id: "p1") { name } }`, nil); res.status != http.StatusOK || len(res.Errors) > 0 {
		t.Fatalf("anonymous: %d %s", res.status, res.body)
	}
}

// badAuthorizations are Authorization values the router must refuse, built
// around key, the one key the user service publishes.
func badAuthorizations(t *testing.T, key auth.Key) map[string]string {
	other := newKey(t)
	valid := issue(t, key, testIssuer, testAudience, time.Minute)
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1 // still base64url, no longer the signature
	return map[string]string{
		"tampered signature":   "Bearer " + parts[0] + "." + parts[1] + "." + string(sig),
		"tampered claims":      "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","role":"ADMIN","iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":9999999999}`)) + "." + parts[2],
		"unknown key":          "Bearer " + issue(t, other, testIssuer, testAudience, time.Minute),
		"known kid, other key": "Bearer " + handmade(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": key.ID}, other.Private),
		"expired":              "Bearer " + issue(t, key, testIssuer, testAudience, -time.Minute),
		"alg none":             "Bearer " + handmade(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, nil),
		"other audience":       "Bearer " + issue(t, key, testIssuer, "somebody-else", time.Minute),
		"other issuer":         "Bearer " + issue(t, key, "https://evil.test", testAudience, time.Minute),
		"garbage":              "Bearer not.a.jwt",
		"no token":             "Bearer ",
		"basic scheme":         "Basic dTE6c2VjcmV0",
		"token without scheme": valid,
	}
}

func TestInvalidTokensAreRefusedBeforePlanning(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	g := startAuthGraph(t, newKeyService(t, key))
	query := `{ product(id: "p1") { name stock } }`
	for name, authz := range badAuthorizations(t, key) {
		t.Run(name, func(t *testing.T) {
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				var req *http.Request
				if method == http.MethodPost {
					req, _ = http.NewRequest(method, g.server.URL+"/graphql", strings.NewReader(`{"query": "{ product(id: \"p1\") { name stock } }"}`))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest(method, g.server.URL+"/graphql?"+url.Values{"query": {query}}.Encode(), nil)
				}
				req.Header.Set("Authorization", authz)
				res := do(t, req)
				if res.status != http.StatusUnauthorized || res.firstCode() != "UNAUTHENTICATED" || res.Data != nil {
					t.Fatalf("%s: got %d %s", method, res.status, res.body)
				}
			}
		})
	}
	t.Run("two Authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.server.URL+"/graphql", strings.NewReader(`{"query": "{ product(id: \"p1\") { name } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("Authorization", "Bearer "+issue(t, key, testIssuer, testAudience, time.Minute))
		req.Header.Add("Authorization", "Bearer forged")
		if res := do(t, req); res.status != http.StatusUnauthorized || res.firstCode() != "UNAUTHENTICATED" {
			t.Fatalf("got %d %s", res.status, res.body)
		}
	})
	if n := len(g.products.recorded()) + len(g.inventory.recorded()); n != 0 {
		t.Fatalf("refused requests reached the subgraphs %d times", n)
	}
}

func TestRotatedKeyVerifiesAfterRefetch(t *testing.T) {
	t.Parallel()
	oldKey, rotated := newKey(t), newKey(t)
	ks := newKeyService(t, oldKey)
	g := startAuthGraph(t, ks)
	query := `{ product(id: "p1") { name } }`
	if res := postQuery(t, g.server, query, nil, "Authorization", "Bearer "+issue(t, oldKey, testIssuer, testAudience, time.Minute)); res.status != http.StatusOK {
		t.Fatalf("old key: %d %s", res.status, res.body)
	}
	// The user service starts signing with a new key. The verifier refetches
	// on an unknown kid, but at most every 5 s.
	ks.publish(rotated, oldKey)
	time.Sleep(5*time.Second + 100*time.Millisecond)
	if res := postQuery(t, g.server, query, nil, "Authorization", "Bearer "+issue(t, rotated, testIssuer, testAudience, time.Minute)); res.status != http.StatusOK {
		t.Fatalf("new key: %d %s", res.status, res.body)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("key set fetched %d times, want 2", n)
	}
}

func TestWebsocketCarriesVerifiedToken(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	ks := newKeyService(t, key)
	tests := []struct {
		name, protocol, start, data string
		init                        map[string]any
		header                      bool // send the token on the upgrade instead
	}{
		{"graphql-transport-ws init", "graphql-transport-ws", "subscribe", "next", map[string]any{"Authorization": ""}, false},
		{"graphql-transport-ws lower-case init", "graphql-transport-ws", "subscribe", "next", map[string]any{"authorization": ""}, false},
		{"graphql-transport-ws upgrade header", "graphql-transport-ws", "subscribe", "next", nil, true},
		{"graphql-ws init", "graphql-ws", "start", "data", map[string]any{"Authorization": ""}, false},
		{"graphql-ws lower-case init", "graphql-ws", "start", "data", map[string]any{"authorization": ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g := startAuthGraph(t, ks)
			authz := "Bearer " + issue(t, key, testIssuer, testAudience, time.Minute)
			for k := range tt.init {
				tt.init[k] = authz
			}
			header := http.Header{}
			if tt.header {
				header.Set("Authorization", authz)
			}
			c := dialRouterWith(ctx, t, g, tt.protocol, header)
			writeInit(ctx, t, c, tt.init)
			readUntil(ctx, t, c, "connection_ack")

			sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p3") { id name } }`})
			if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: tt.start, Payload: sub}); err != nil {
				t.Fatal(err)
			}
			if m := readUntil(ctx, t, c, tt.data, "error"); m.Type != tt.data || !strings.Contains(string(m.Payload), `"p3"`) {
				t.Fatalf("got %s %s", m.Type, m.Payload)
			}
			upgrades, _ := g.products.recordedUpgrades()
			if len(upgrades) != 1 || upgrades[0].Get("Authorization") != authz {
				t.Fatalf("upstream upgrades %v, want one with Authorization %q", upgrades, authz)
			}
		})
	}
}

func TestWebsocketRefusesInvalidToken(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	ks := newKeyService(t, key)
	bad := badAuthorizations(t, key)
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			g := startAuthGraph(t, ks)
			start := map[string]string{"graphql-transport-ws": "subscribe", "graphql-ws": "start"}[protocol]
			sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p3") { id } }`})

			for name, authz := range bad {
				if name == "token without scheme" && protocol == "graphql-ws" {
					continue // one of each protocol is plenty here
				}
				t.Run("init "+name, func(t *testing.T) {
					expectInitRefused(t, g, protocol, authz, wsMessage{ID: "1", Type: start, Payload: sub})
				})
			}

			t.Run("upgrade header", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				url := "ws" + strings.TrimPrefix(g.server.URL, "http") + "/graphql"
				header := http.Header{"Authorization": {bad["expired"]}}
				_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol}, HTTPHeader: header})
				if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("dial: %v, response %+v", err, resp)
				}
			})

			if protocol == "graphql-ws" {
				t.Run("start before init", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c := dialRouterWith(ctx, t, g, protocol, nil)
					if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: start, Payload: sub}); err != nil {
						t.Fatal(err)
					}
					readUntil(ctx, t, c, "connection_error")
					expectClose(ctx, t, c, closeUnauthorized)
				})
			}

			if upgrades, _ := g.products.recordedUpgrades(); len(upgrades) != 0 {
				t.Fatalf("products subgraph was dialled %d times", len(upgrades))
			}
		})
	}
}

// expectInitRefused sends authz in connection_init, then op without
// waiting for the answer (a client that does not wait gets nowhere either),
// and expects the connection closed with 4403: after a connection_error
// that says what was wrong, on graphql-ws.
func expectInitRefused(t *testing.T, g *testGraph, protocol, authz string, op wsMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialRouterWith(ctx, t, g, protocol, nil)
	writeInit(ctx, t, c, map[string]any{"Authorization": authz})
	_ = wsjson.Write(ctx, c, op)
	if protocol == "graphql-ws" {
		if m := readUntil(ctx, t, c, "connection_error"); !strings.Contains(string(m.Payload), "token") && !strings.Contains(string(m.Payload), "Authorization") {
			t.Fatalf("connection_error %s", m.Payload)
		}
	}
	expectClose(ctx, t, c, closeForbidden)
}

// dialRouterWith opens a client websocket to the router with one
// subprotocol and the given upgrade headers.
func dialRouterWith(ctx context.Context, t *testing.T, g *testGraph, subprotocol string, header http.Header) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(g.server.URL, "http") + "/graphql"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{subprotocol}, HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func writeInit(ctx context.Context, t *testing.T, c *websocket.Conn, payload map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(payload)
	if err := wsjson.Write(ctx, c, wsMessage{Type: "connection_init", Payload: raw}); err != nil {
		t.Fatal(err)
	}
}

// expectClose reads until the router closes the connection and checks the
// close code. Any message but a keep-alive fails the test.
func expectClose(ctx context.Context, t *testing.T, c *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	for {
		var m wsMessage
		err := wsjson.Read(ctx, c, &m)
		if err == nil {
			if m.Type == "ka" || m.Type == "connection_error" {
				continue
			}
			t.Fatalf("got %s %s, want the connection closed", m.Type, m.Payload)
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		return
	}
}

func TestJWKSProxy(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	ks := newKeyService(t, key)
	g := startAuthGraph(t, ks)

	res, err := http.Get(g.server.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Keys []struct {
			Kid, Kty, Crv, Alg string
		} `json:"keys"`
	}
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q, decode error %v", res.StatusCode, res.Header.Get("Content-Type"), err)
	}
	if len(got.Keys) != 1 || got.Keys[0].Kid != key.ID || got.Keys[0].Crv != "Ed25519" || got.Keys[0].Alg != "EdDSA" {
		t.Fatalf("keys %+v, want the user service's key %s", got.Keys, key.ID)
	}

	ks.Close()
	req, _ := http.NewRequest(http.MethodGet, g.server.URL+"/.well-known/jwks.json", nil)
	if r := do(t, req); r.status != http.StatusBadGateway || r.firstCode() != codeBadGateway {
		t.Fatalf("user service down: %d %s", r.status, r.body)
	}
}

// A websocket lives no longer than the token it was opened with: when the
// token expires (exp plus the leeway) the router closes the connection
// with 4403, ending its subscriptions, whether the token came in
// connection_init or on the upgrade.
func TestWebsocketClosesWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	ks := newKeyService(t, key)
	for _, onUpgrade := range []bool{false, true} {
		t.Run(fmt.Sprintf("token on the upgrade %v", onUpgrade), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			g := startAuthGraph(t, ks)
			authz := "Bearer " + issue(t, key, testIssuer, testAudience, time.Second)
			header, init := http.Header{}, map[string]any{"Authorization": authz}
			if onUpgrade {
				header.Set("Authorization", authz)
				init = nil
			}
			c := dialRouterWith(ctx, t, g, "graphql-transport-ws", header)
			writeInit(ctx, t, c, init)
			readUntil(ctx, t, c, "connection_ack")
			sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "p3") { id name } }`})
			if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
				t.Fatal(err)
			}
			opened := time.Now()
			var err error
			for err == nil { // events flow until the close
				var m wsMessage
				err = wsjson.Read(ctx, c, &m)
			}
			if got := websocket.CloseStatus(err); got != closeForbidden {
				t.Fatalf("connection ended with %v (status %d) after %v, want %d", err, got, time.Since(opened), closeForbidden)
			}
			if d := time.Since(opened); d > auth.Leeway+3*time.Second {
				t.Errorf("closed %v after subscribing; the token (1 s + %v leeway) had expired long before", d, auth.Leeway)
			}
		})
	}
}
