package router

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/onlinemart/mart/router/playground"
)

// fetch GETs path from the test server with extra headers, undecoded (no
// transparent gzip), and returns the response with its body read.
func fetch(t *testing.T, g *testGraph, method, target string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.server.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func playgroundOn(o *Options) { o.Playground = true; o.Introspection = true }

var assetRef = regexp.MustCompile(`(?:href|src)="(playground/[^"]+)"`)

func TestPlaygroundPage(t *testing.T) {
	g := startGraph(t, playgroundOn)
	res, body := fetch(t, g, http.MethodGet, "/", "Accept", "text/html")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d %s", res.StatusCode, body)
	}
	for h, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": playground.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("GET / %s = %q, want %q", h, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, forbidden := range []string{"http:", "https:", "*", "unsafe-eval", "blob:"} {
		if strings.Contains(csp, forbidden) {
			t.Errorf("CSP allows %q: %s", forbidden, csp)
		}
	}
	if !bytes.Contains(body, []byte(`<div id="graphiql">`)) {
		t.Fatalf("page: %s", body)
	}
	refs := assetRef.FindAllStringSubmatch(string(body), -1)
	if len(refs) != 2 {
		t.Fatalf("page refers to %d assets, want the script and the stylesheet: %s", len(refs), body)
	}
	for _, ref := range refs {
		if res, _ := fetch(t, g, http.MethodGet, "/"+ref[1]); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", ref[1], res.StatusCode)
		}
	}

	// Revalidation answers 304 without a body.
	etag := res.Header.Get("ETag")
	if res, body := fetch(t, g, http.MethodGet, "/", "If-None-Match", etag); res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match %s: %d, %d bytes", etag, res.StatusCode, len(body))
	}
	if res, body := fetch(t, g, http.MethodHead, "/"); res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD /: %d, %d bytes", res.StatusCode, len(body))
	}
}

// Every built file is served with its content type, a long cache lifetime
// (names carry content hashes) and, where it helps, gzip.
func TestPlaygroundAssets(t *testing.T) {
	g := startGraph(t, playgroundOn)
	entries, err := os.ReadDir("playground/dist/assets")
	if err != nil {
		t.Fatal(err)
	}
	workers := 0
	for _, e := range entries {
		name := e.Name()
		if strings.Contains(name, ".worker-") {
			workers++
		}
		t.Run(name, func(t *testing.T) { checkAsset(t, g, name) })
	}
	if workers != 3 {
		t.Errorf("%d Monaco workers built, want editor, json and graphql", workers)
	}
	for _, p := range []string{playground.AssetPrefix + "nope.js", playground.AssetPrefix, playground.AssetPrefix + "../index.html", "/index.html"} {
		if res, body := fetch(t, g, http.MethodGet, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, res.StatusCode, body)
		}
	}
}

var (
	assetTypes      = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".ttf": "font/ttf"}
	hashedAssetName = regexp.MustCompile(`-[A-Z0-9]{8}\.[a-z0-9]+$`)
)

// checkAsset fetches the built file name as is and gzipped, and checks
// both against the file and their headers.
func checkAsset(t *testing.T, g *testGraph, name string) {
	if !hashedAssetName.MatchString(name) {
		t.Errorf("%s has no content hash in its name, so it must not be cached for good", name)
	}
	want, err := os.ReadFile("playground/dist/assets/" + name)
	if err != nil {
		t.Fatal(err)
	}
	res, body := fetch(t, g, http.MethodGet, playground.AssetPrefix+name)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("status %d, %d bytes (want %d)", res.StatusCode, len(body), len(want))
	}
	if ct, ok := assetTypes[path.Ext(name)]; ok && res.Header.Get("Content-Type") != ct {
		t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control %q", cc)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}

	res, body = fetch(t, g, http.MethodGet, playground.AssetPrefix+name, "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, want) {
		t.Fatalf("gzipped body does not decode to the file: %v", err)
	}
	if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q", res.Header.Get("Vary"))
	}
}

// A browser opening /graphql gets the page; GraphQL clients get GraphQL.
func TestPlaygroundAtGraphQLEndpoint(t *testing.T) {
	g := startGraph(t, playgroundOn)
	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	cases := []struct {
		name, target, accept string
		html                 bool
		status               int
	}{
		{"browser", "/graphql", browser, true, http.StatusOK},
		{"browser with a query", "/graphql?query=" + url.QueryEscape("{ __typename }"), browser, false, http.StatusOK},
		{"client without a query", "/graphql", "application/json", false, http.StatusBadRequest},
		{"no Accept", "/graphql", "", false, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := fetch(t, g, http.MethodGet, c.target, "Accept", c.accept)
			isHTML := strings.HasPrefix(res.Header.Get("Content-Type"), "text/html")
			if res.StatusCode != c.status || isHTML != c.html {
				t.Fatalf("status %d, Content-Type %q: %.200s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
		})
	}
	// POST is never the playground, whatever the Accept.
	res := post(t, g.server, `{"query": "{ __typename }"}`, "Accept", browser)
	if res.status != http.StatusOK || res.Data["__typename"] != "Query" {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
}

func TestPlaygroundOff(t *testing.T) {
	g := startGraph(t, func(o *Options) { o.Introspection = true })
	for _, target := range []string{"/", playground.AssetPrefix + "anything.js"} {
		res, body := fetch(t, g, http.MethodGet, target, "Accept", "text/html")
		if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s", target, res.StatusCode, body)
		}
	}
	entries, _ := os.ReadDir("playground/dist/assets")
	if len(entries) > 0 {
		if res, _ := fetch(t, g, http.MethodGet, playground.AssetPrefix+entries[0].Name()); res.StatusCode != http.StatusNotFound {
			t.Errorf("asset served with the playground off: %d", res.StatusCode)
		}
	}
	// /graphql stays GraphQL: a browser without a query gets the usual 400.
	res, body := fetch(t, g, http.MethodGet, "/graphql", "Accept", "text/html")
	if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /graphql: %d %s", res.StatusCode, body)
	}
}

func TestIntrospection(t *testing.T) {
	introspect := map[string]string{
		"__schema":             `{ __schema { queryType { name } } }`,
		"__type":               `{ __type(name: "Product") { name } }`,
		"in a fragment":        `query { ...Intro } fragment Intro on Query { __schema { types { name } } }`,
		"in an inline fragmet": `{ ... on Query { __type(name: "Query") { name } } }`,
		"aliased":              `{ products(first: 1) { id } s: __schema { queryType { name } } }`,
	}
	t.Run("on", func(t *testing.T) {
		g := startGraph(t, func(o *Options) { o.Introspection = true })
		res := postQuery(t, g.server, introspect["__schema"], nil)
		if res.status != http.StatusOK || len(res.Errors) > 0 {
			t.Fatalf("%d %s", res.status, res.body)
		}
		if name := res.Data["__schema"].(map[string]any)["queryType"].(map[string]any)["name"]; name != "Query" {
			t.Fatalf("%s", res.body)
		}
	})
	t.Run("off", func(t *testing.T) {
		g := startGraph(t, nil) // the zero Options: introspection off
		for name, q := range introspect {
			res := postQuery(t, g.server, q, nil)
			if res.status != http.StatusBadRequest || res.firstCode() != codeValidationFailed || !strings.Contains(res.Errors[0].Message, "introspection is disabled") {
				t.Errorf("%s: %d %s", name, res.status, res.body)
			}
		}
		if got := len(g.products.recorded()) + len(g.inventory.recorded()); got != 0 {
			t.Errorf("refused introspection reached the subgraphs %d times", got)
		}
		res := get(t, g.server, url.Values{"query": {introspect["__type"]}})
		if res.status != http.StatusBadRequest || res.firstCode() != codeValidationFailed {
			t.Errorf("GET: %d %s", res.status, res.body)
		}
		// __typename is not introspection of the schema.
		res = postQuery(t, g.server, `{ __typename products(first: 1) { __typename id } }`, nil)
		if res.status != http.StatusOK || len(res.Errors) > 0 || res.Data["__typename"] != "Query" {
			t.Errorf("__typename: %d %s", res.status, res.body)
		}

		// Over a websocket too.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
		sub, _ := json.Marshal(map[string]any{"query": introspect["__schema"]})
		if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
			t.Fatal(err)
		}
		m := readUntil(ctx, t, c, "error", "next")
		if m.Type != "error" || !strings.Contains(string(m.Payload), "introspection is disabled") || !strings.Contains(string(m.Payload), `"code":"GRAPHQL_VALIDATION_FAILED"`) {
			t.Fatalf("websocket: %s %s", m.Type, m.Payload)
		}
	})
}
