package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlerr"
)

const iss, aud = "mart", "mart-api"

func mustKey(t *testing.T) auth.Key {
	t.Helper()
	k, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, k auth.Key, issuer, audience string, ttl time.Duration) string {
	t.Helper()
	i, err := auth.NewIssuer([]auth.Key{k}, issuer, audience, ttl)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := i.Issue(auth.Principal{UserID: "u1", Role: auth.Customer, SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer serves the public keys of *keys and counts fetches.
func jwksServer(t *testing.T, keys *[]auth.Key) (*httptest.Server, *atomic.Int64) {
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(auth.JWKS(*keys)) // a failed write fails the verifier's fetch
	}))
	t.Cleanup(srv.Close)
	return srv, &fetches
}

func TestValidTokenYieldsItsPrincipal(t *testing.T) {
	k := mustKey(t)
	keys := []auth.Key{k}
	srv, _ := jwksServer(t, &keys)
	before := time.Now()
	p, err := auth.NewVerifier(srv.URL, iss, aud).Verify(context.Background(), issue(t, k, iss, aud, time.Minute))
	// The token is accepted until its exp (whole seconds) plus the leeway.
	if exp := p.ExpiresAt.Add(-auth.Leeway); exp.Before(before.Add(time.Minute-time.Second)) || exp.After(time.Now().Add(time.Minute)) {
		t.Errorf("expires at %v, want about a minute from now plus %v", p.ExpiresAt, auth.Leeway)
	}
	p.ExpiresAt = time.Time{}
	if err != nil || p != (auth.Principal{UserID: "u1", Role: auth.Customer, SessionID: "s1"}) {
		t.Fatalf("got %+v, %v", p, err)
	}
}

func TestBadTokensAreRefused(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	keys := []auth.Key{k}
	srv, _ := jwksServer(t, &keys)
	v := auth.NewVerifier(srv.URL, iss, aud)
	good := issue(t, k, iss, aud, time.Minute)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	// A token signed by another key but claiming k's kid.
	forged := issue(t, other, iss, aud, time.Minute)
	fparts := strings.Split(forged, ".")
	header := b64([]byte(`{"alg":"EdDSA","kid":"` + k.ID + `","typ":"JWT"}`))

	sig := []byte(parts[2])
	sig[5] ^= 1
	cases := map[string]string{
		"tampered signature": parts[0] + "." + parts[1] + "." + string(sig),
		"tampered claims":    parts[0] + "." + b64([]byte(`{"sub":"admin","role":"ADMIN","iss":"mart","aud":["mart-api"],"exp":9999999999}`)) + "." + parts[2],
		"unknown key":        forged,
		"forged kid":         header + "." + fparts[1] + "." + fparts[2],
		"expired":            issue(t, k, iss, aud, -time.Minute),
		"other audience":     issue(t, k, iss, "someone-else", time.Minute),
		"other issuer":       issue(t, k, "evil", aud, time.Minute),
		"alg none":           b64([]byte(`{"alg":"none","typ":"JWT","kid":"`+k.ID+`"}`)) + "." + parts[1] + ".",
		"garbage":            "not-a-token",
	}
	for name, tok := range cases {
		if p, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: got %+v, %v; want ErrInvalidToken", name, p, err)
		}
	}
}

// A new key published later verifies after one refetch; unknown kids do
// not make the verifier hammer the key endpoint.
func TestKeyRotationRefetchesOnUnknownKid(t *testing.T) {
	old := mustKey(t)
	keys := []auth.Key{old}
	srv, fetches := jwksServer(t, &keys)
	v := auth.NewVerifier(srv.URL, iss, aud)
	if _, err := v.Verify(context.Background(), issue(t, old, iss, aud, time.Minute)); err != nil {
		t.Fatal(err)
	}
	next := mustKey(t)
	keys = []auth.Key{next, old}
	// The first fetch was just now: refetches are rate-limited, so wait for
	// the limiter to allow one (bounded), then the new key verifies.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err = v.Verify(context.Background(), issue(t, next, iss, aud, time.Minute)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("rotated key never verified: %v", err)
	}
	if _, err := v.Verify(context.Background(), issue(t, old, iss, aud, time.Minute)); err != nil {
		t.Errorf("old key stopped verifying before retirement: %v", err)
	}
	if n := fetches.Load(); n > 3 {
		t.Errorf("%d fetches of the key set", n)
	}
}

func TestKeysSurvivePEM(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	keys, err := auth.ParseKeysPEM(append(a.PEM(), b.PEM()...))
	if err != nil || len(keys) != 2 || keys[0].ID != a.ID || keys[1].ID != b.ID || !keys[0].Private.Equal(a.Private) {
		t.Fatalf("got %d keys, %v", len(keys), err)
	}
	if _, err := auth.ParseKeysPEM([]byte("nothing here")); err == nil {
		t.Error("want an error for a file without keys")
	}
}

func TestRequire(t *testing.T) {
	ctx := context.Background()
	code := func(err error) string {
		var e *gqlerr.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	if _, err := auth.Require(ctx); code(err) != gqlerr.Unauthenticated {
		t.Errorf("anonymous: %v", err)
	}
	customer := auth.WithPrincipal(ctx, auth.Principal{UserID: "u", Role: auth.Customer})
	if _, err := auth.Require(customer, auth.Admin); code(err) != gqlerr.Forbidden {
		t.Errorf("customer as admin: %v", err)
	}
	if p, err := auth.Require(customer); err != nil || p.UserID != "u" {
		t.Errorf("signed in: %v", err)
	}
	if err := auth.Public.Check(ctx); err != nil {
		t.Errorf("public: %v", err)
	}
}
