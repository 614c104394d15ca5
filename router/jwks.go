package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

const (
	jwksPath     = "/.well-known/jwks.json"
	maxJWKSBytes = 1 << 20
)

// serveJWKS republishes the user service's public keys, so that clients
// find them at the router, the one public address. Each request is proxied
// rather than cached, so a rotated key shows at once.
func (rt *Router) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeErrors(w, http.StatusMethodNotAllowed, newError(codeMethodNotAllowed, "method %s is not allowed; use GET", r.Method))
		return
	}
	if rt.opts.JWKSURL == "" {
		writeErrors(w, http.StatusNotFound, newError(codeNotFound, "no key set is published here"))
		return
	}
	body, cacheControl, err := rt.fetchJWKS(r.Context())
	if err != nil {
		rt.log.WarnContext(r.Context(), "cannot fetch the token keys", "url", rt.opts.JWKSURL, "err", err)
		writeErrors(w, http.StatusBadGateway, newError(codeBadGateway, "the token keys are unavailable"))
		return
	}
	if cacheControl != "" {
		w.Header().Set("Cache-Control", cacheControl)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	_, _ = w.Write(body)
}

func (rt *Router) fetchJWKS(ctx context.Context) (body []byte, cacheControl string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rt.opts.JWKSURL, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := rt.jwksClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("user service answered %s", resp.Status)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	switch {
	case err != nil:
		return nil, "", err
	case len(body) > maxJWKSBytes:
		return nil, "", errors.New("key set too large")
	case !json.Valid(body):
		return nil, "", errors.New("key set is not JSON")
	}
	return body, resp.Header.Get("Cache-Control"), nil
}
