package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// claims are an access token's claims.
type claims struct {
	jwt.Claims
	Role Role   `json:"role"`
	SID  string `json:"sid,omitempty"`
	Ver  int64  `json:"ver,omitempty"`
}

// Issuer signs access tokens with the first of its keys.
type Issuer struct {
	signer   jose.Signer
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewIssuer returns an issuer signing with keys[0].
func NewIssuer(keys []Key, issuer, audience string, ttl time.Duration) (*Issuer, error) {
	if len(keys) == 0 {
		return nil, errors.New("issuer: no signing key")
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: keys[0].Private, KeyID: keys[0].ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &Issuer{signer: signer, issuer: issuer, audience: audience, ttl: ttl, now: time.Now}, nil
}

// Issue returns a signed access token for p and when it expires.
func (i *Issuer) Issue(p Principal) (string, time.Time, error) {
	now := i.now()
	exp := now.Add(i.ttl)
	c := claims{
		Claims: jwt.Claims{
			Subject: p.UserID, Issuer: i.issuer, Audience: jwt.Audience{i.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
		},
		Role: p.Role, SID: p.SessionID, Ver: p.TokenVersion,
	}
	token, err := jwt.Signed(i.signer).Claims(c).Serialize()
	return token, exp.Truncate(time.Second), err
}

// ErrInvalidToken is returned for any token that does not verify; the
// wrapped detail is for logs, not for clients.
var ErrInvalidToken = errors.New("invalid or expired token")

// Leeway is the clock skew tolerated between issuer and verifiers.
const Leeway = 5 * time.Second

// Verifier checks access tokens against a JWK set: the user service's,
// fetched from a URL and cached, or a fixed one.
type Verifier struct {
	issuer   string
	audience string
	url      string
	client   *http.Client

	mu        sync.Mutex
	keys      jose.JSONWebKeySet
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt, to rate-limit refetches
}

// NewVerifier returns a verifier fetching keys from jwksURL on demand: at
// first use, and again when a token names an unknown key (rotation),
// at most once per refetchInterval.
func NewVerifier(jwksURL, issuer, audience string) *Verifier {
	return &Verifier{issuer: issuer, audience: audience, url: jwksURL, client: &http.Client{Timeout: 5 * time.Second}}
}

// NewKeyVerifier returns a verifier that trusts exactly keys.
func NewKeyVerifier(keys []Key, issuer, audience string) *Verifier {
	v := &Verifier{issuer: issuer, audience: audience}
	for _, k := range keys {
		v.keys.Keys = append(v.keys.Keys, k.publicJWK())
	}
	return v
}

const (
	refetchInterval = 5 * time.Second
	maxKeyAge       = 10 * time.Minute // refresh the cache now and then to drop retired keys
)

// Verify checks a token's signature (EdDSA only: "none" and other
// algorithms are refused), issuer, audience and lifetime, and returns its
// principal.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return Principal{}, fmt.Errorf("%w: no kid", ErrInvalidToken)
	}
	key, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return Principal{}, err
	}
	var c claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Expiry == nil || c.Subject == "" || !c.Role.Valid() {
		return Principal{}, fmt.Errorf("%w: missing exp, sub or role", ErrInvalidToken)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: time.Now()}, Leeway); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return Principal{UserID: c.Subject, Role: c.Role, SessionID: c.SID, TokenVersion: c.Ver, ExpiresAt: c.Expiry.Time().Add(Leeway)}, nil
}

// key returns the public key kid, refetching the set when kid is unknown.
func (v *Verifier) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	stale := v.url != "" && time.Since(v.fetched) > maxKeyAge
	if found := v.keys.Key(kid); len(found) > 0 && !stale {
		return found[0], nil
	}
	if v.url == "" || time.Since(v.attempted) < refetchInterval && !v.fetched.IsZero() {
		if found := v.keys.Key(kid); len(found) > 0 {
			return found[0], nil
		}
		return jose.JSONWebKey{}, fmt.Errorf("%w: unknown key %q", ErrInvalidToken, kid)
	}
	v.attempted = time.Now()
	set, err := v.fetch(ctx)
	if err != nil {
		// Keep serving tokens of keys we know when the user service is down.
		if found := v.keys.Key(kid); len(found) > 0 {
			return found[0], nil
		}
		return jose.JSONWebKey{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	v.keys, v.fetched = set, time.Now()
	if found := v.keys.Key(kid); len(found) > 0 {
		return found[0], nil
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: unknown key %q", ErrInvalidToken, kid)
}

func (v *Verifier) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return set, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return set, fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("fetch keys: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return set, fmt.Errorf("fetch keys: %w", err)
	}
	// Only Ed25519 public keys count; anything else in the set is ignored.
	keep := set.Keys[:0]
	for _, k := range set.Keys {
		if _, ok := k.Key.(ed25519.PublicKey); ok && k.KeyID != "" {
			keep = append(keep, k)
		}
	}
	set.Keys = keep
	return set, nil
}
