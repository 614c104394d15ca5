package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Key is an Ed25519 signing key; its ID (the token's kid) is the RFC 7638
// thumbprint of the public key, so every replica names a key alike.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// GenerateKey returns a new signing key.
func GenerateKey() (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return newKey(priv)
}

func newKey(priv ed25519.PrivateKey) (Key, error) {
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: base64.RawURLEncoding.EncodeToString(tp), Private: priv}, nil
}

// ParseKeysPEM reads one or more PKCS#8 "PRIVATE KEY" blocks of Ed25519 keys.
// Its errors name the block (PRIVATE KEY block N, from 1) and what is wrong
// with it; the caller names the data.
func ParseKeysPEM(data []byte) ([]Key, error) {
	var keys []Key
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PRIVATE KEY" {
			continue
		}
		n := len(keys) + 1
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PRIVATE KEY block %d: %w", n, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PRIVATE KEY block %d: want an Ed25519 key, got %T", n, k)
		}
		key, err := newKey(priv)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PRIVATE KEY block found")
	}
	return keys, nil
}

// PEM encodes the key as a PKCS#8 "PRIVATE KEY" block.
func (k Key) PEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		panic(err) // an Ed25519 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (k Key) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(jose.EdDSA), Use: "sig"}
}

// JWKS returns the public JWK set of keys, as served at
// /.well-known/jwks.json.
func JWKS(keys []Key) []byte {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k.publicJWK()
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err) // public Ed25519 keys always marshal
	}
	return b
}
