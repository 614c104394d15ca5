package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/onlinemart/mart/internal/gqlerr"
)

// Middleware verifies the bearer token of each request, if any, and puts
// its principal in the request context. A request without a token passes
// unauthenticated (resolvers' rules decide); one with a bad token is
// refused with 401 and a GraphQL error coded UNAUTHENTICATED. Websocket
// upgrades are covered too: the router sends the token as a header there.
func Middleware(v *Verifier, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := BearerToken(header)
		if !ok {
			Unauthorized(w, "Authorization must be a Bearer token")
			return
		}
		p, err := v.Verify(r.Context(), token)
		if err != nil {
			log.Debug("token refused", "err", err, "path", r.URL.Path)
			Unauthorized(w, "invalid or expired token")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// BearerToken extracts the token of an "Authorization: Bearer …" value.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// Unauthorized writes a 401 GraphQL error response.
func Unauthorized(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{
		"message": message, "extensions": map[string]any{"code": gqlerr.Unauthenticated},
	}}})
}
