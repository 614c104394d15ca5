package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
)

// FuzzVerify runs arbitrary Authorization header values through the
// parsing and verification every component applies (router and
// subgraphs): no panic; anything but a token our issuer signed is refused
// with ErrInvalidToken; a verified token yields a valid principal.
func FuzzVerify(f *testing.F) {
	key, err := auth.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	issuer, err := auth.NewIssuer([]auth.Key{key}, "mart", "mart-api", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	issued := auth.Principal{UserID: "0193c1d4-0000-7000-8000-000000000001", Role: auth.Customer, SessionID: "s"}
	good, _, err := issuer.Issue(issued)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	for _, h := range []string{
		"Bearer " + good,
		"bearer   " + good + "  ",
		"Basic YWRtaW46YWRtaW4=",
		"Bearer",
		"Bearer " + b64([]byte(`{"alg":"none","kid":"`+key.ID+`"}`)) + "." + parts[1] + ".",
		"Bearer " + b64([]byte(`{"alg":"HS256","kid":"`+key.ID+`"}`)) + "." + parts[1] + "." + parts[2],
		"Bearer " + parts[0] + "." + b64([]byte(`{"sub":"x","role":"ADMIN","exp":99999999999,"iss":"mart","aud":"mart-api"}`)) + "." + parts[2],
		"Bearer " + parts[0] + "." + parts[1],
		"Bearer " + strings.Repeat("A", 8<<10),
		"Bearer a.b.c.d.e",
		"Bearer \x00.\xff.\u202e",
	} {
		f.Add(h)
	}
	verifier := auth.NewKeyVerifier([]auth.Key{key}, "mart", "mart-api")
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := auth.BearerToken(header)
		if !ok {
			return
		}
		if token == "" || strings.TrimSpace(token) != token {
			t.Fatalf("BearerToken(%q) = %q", header, token)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := verifier.Verify(ctx, token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if p.UserID == "" || !p.Role.Valid() {
			t.Fatalf("verified a token with principal %+v", p)
		}
		// Only the issuer's token verifies (perhaps spelled differently:
		// base64 decoding ignores unused trailing bits), so the principal
		// is the one it was issued for: nothing can be forged.
		if p.ExpiresAt.IsZero() {
			t.Fatalf("verified %q without its expiry", token)
		}
		if p.ExpiresAt = (time.Time{}); p != issued {
			t.Fatalf("verified %q as %+v", token, p)
		}
	})
}
