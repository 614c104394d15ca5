package router

import (
	"net/http"
	"strings"

	"github.com/onlinemart/mart/router/playground"
)

// servePlayground serves the GraphiQL playground when Options.Playground
// is on: the page at GET / and, for a browser asking for HTML with no
// query, at GET /graphql; its assets under /playground/. It reports
// whether it answered; anything else is left to the GraphQL handler.
func (rt *Router) servePlayground(w http.ResponseWriter, r *http.Request) bool {
	if rt.playground == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	switch {
	case r.URL.Path == "/":
		rt.playground.ServeIndex(w, r)
		return true
	case r.URL.Path == graphqlPath && wantsPlayground(r):
		rt.playground.ServeIndex(w, r)
		return true
	case strings.HasPrefix(r.URL.Path, playground.AssetPrefix):
		return rt.playground.ServeAsset(w, r, r.URL.Path)
	}
	return false
}

// wantsPlayground reports whether a GET of /graphql comes from a browser
// navigating there (it accepts text/html) rather than from a GraphQL client
// (which sends a query, or upgrades to a websocket).
func wantsPlayground(r *http.Request) bool {
	if isWebsocketUpgrade(r) || r.URL.Query().Has("query") {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}
