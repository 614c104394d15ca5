package deploy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/compose-spec/compose-go/v2/types"
)

// The plugins bundled with Kong Gateway OSS 3.x. Anything else is an
// Enterprise plugin (or a custom one the image lacks) and DB-less Kong
// refuses to start with it.
var kongOSSPlugins = []string{
	"acl", "acme", "ai-azure-content-safety", "ai-prompt-decorator", "ai-prompt-guard",
	"ai-prompt-template", "ai-proxy", "ai-request-transformer", "ai-response-transformer",
	"aws-lambda", "azure-functions", "basic-auth", "bot-detection", "correlation-id", "cors",
	"datadog", "file-log", "grpc-gateway", "grpc-web", "hmac-auth", "http-log", "ip-restriction",
	"jwt", "key-auth", "ldap-auth", "loggly", "oauth2", "opentelemetry", "post-function",
	"pre-function", "prometheus", "proxy-cache", "rate-limiting", "redirect", "request-size-limiting",
	"request-termination", "request-transformer", "response-ratelimiting", "response-transformer",
	"session", "standard-webhooks", "statsd", "syslog", "tcp-log", "udp-log", "zipkin",
}

// The route protocols of Kong OSS; ws and wss exist only in Enterprise.
var kongOSSProtocols = []string{"http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp"}

type kongPlugin struct {
	Name      string         `yaml:"name"`
	Service   string         `yaml:"service"`
	Route     string         `yaml:"route"`
	Consumer  string         `yaml:"consumer"`
	Enabled   *bool          `yaml:"enabled"`
	Protocols []string       `yaml:"protocols"`
	Tags      []string       `yaml:"tags"`
	Config    map[string]any `yaml:"config"`
}

type kongRoute struct {
	Name      string         `yaml:"name"`
	Paths     []string       `yaml:"paths"`
	Protocols []string       `yaml:"protocols"`
	Methods   []string       `yaml:"methods"`
	Headers   map[string]any `yaml:"headers"`
	StripPath *bool          `yaml:"strip_path"`
	Plugins   []kongPlugin   `yaml:"plugins"`
}

// kongService and kongRoute list the fields of Kong's schema this config
// may use; parsing is strict, so a misspelt field fails here rather than
// when Kong starts.
type kongService struct {
	Name           string       `yaml:"name"`
	URL            string       `yaml:"url"`
	Protocol       string       `yaml:"protocol"`
	Host           string       `yaml:"host"`
	Port           int          `yaml:"port"`
	Path           string       `yaml:"path"`
	Retries        *int         `yaml:"retries"`
	ConnectTimeout int          `yaml:"connect_timeout"`
	ReadTimeout    int          `yaml:"read_timeout"`
	WriteTimeout   int          `yaml:"write_timeout"`
	Enabled        *bool        `yaml:"enabled"`
	Tags           []string     `yaml:"tags"`
	Routes         []kongRoute  `yaml:"routes"`
	Plugins        []kongPlugin `yaml:"plugins"`
}

type kongConfig struct {
	FormatVersion string           `yaml:"_format_version"`
	Transform     bool             `yaml:"_transform"`
	Services      []kongService    `yaml:"services"`
	Routes        []kongRoute      `yaml:"routes"`
	Plugins       []kongPlugin     `yaml:"plugins"`
	Consumers     []map[string]any `yaml:"consumers"`
	Upstreams     []map[string]any `yaml:"upstreams"`
}

func readKong(t *testing.T) kongConfig {
	t.Helper()
	var k kongConfig
	if err := yaml.UnmarshalWithOptions([]byte(readFile(t, "kong/kong.yml")), &k, yaml.Strict()); err != nil {
		t.Fatalf("kong/kong.yml: %v", err)
	}
	return k
}

// allPlugins is every plugin of the config with where it is attached.
func (k kongConfig) allPlugins() map[string][]kongPlugin {
	out := map[string][]kongPlugin{}
	add := func(where string, ps []kongPlugin) {
		for _, p := range ps {
			out[p.Name] = append(out[p.Name], p)
			_ = where
		}
	}
	add("global", k.Plugins)
	for _, s := range k.Services {
		add("service "+s.Name, s.Plugins)
		for _, r := range s.Routes {
			add("route "+r.Name, r.Plugins)
		}
	}
	for _, r := range k.Routes {
		add("route "+r.Name, r.Plugins)
	}
	return out
}

func TestKongIsDBLessOSS(t *testing.T) {
	k := readKong(t)
	if k.FormatVersion != "3.0" {
		t.Errorf("_format_version %q, want \"3.0\"", k.FormatVersion)
	}
	for name := range k.allPlugins() {
		if !slices.Contains(kongOSSPlugins, name) {
			t.Errorf("plugin %s is not bundled with Kong OSS", name)
		}
	}
	for _, want := range []string{"cors", "rate-limiting", "request-size-limiting", "correlation-id", "prometheus"} {
		if len(k.allPlugins()[want]) == 0 {
			t.Errorf("no %s plugin", want)
		}
	}
	for _, s := range k.Services {
		for _, r := range s.Routes {
			for _, p := range r.Protocols {
				if !slices.Contains(kongOSSProtocols, p) {
					t.Errorf("route %s: protocol %s is not in Kong OSS (%v)", r.Name, p, kongOSSProtocols)
				}
			}
		}
	}

	p := project(t)
	kong, ok := p.Services["kong"]
	if !ok {
		t.Fatal("compose.yaml has no kong service")
	}
	if !strings.HasPrefix(kong.Image, "kong:3") {
		t.Errorf("kong image %q, want kong:3.x (OSS)", kong.Image)
	}
	if v := env(kong, "KONG_DATABASE"); v != "off" {
		t.Errorf("KONG_DATABASE=%q, want off (DB-less)", v)
	}
	declarative := env(kong, "KONG_DECLARATIVE_CONFIG")
	mounted := slices.ContainsFunc(kong.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Target == declarative && v.Source == readPath(t, "kong/kong.yml")
	})
	if declarative == "" || !mounted {
		t.Errorf("kong: KONG_DECLARATIVE_CONFIG=%q is not ./kong/kong.yml mounted into the container", declarative)
	}
	if !slices.ContainsFunc(kong.Ports, func(p types.ServicePortConfig) bool { return p.Target == 8000 && p.Published == "8000" }) {
		t.Errorf("kong: proxy not published on host port 8000 (%v)", ports(kong.Ports))
	}
	if _, port := hostPort(t, "KONG_PROXY_LISTEN", strings.Fields(env(kong, "KONG_PROXY_LISTEN"))[0]); port != 8000 {
		t.Errorf("KONG_PROXY_LISTEN=%q, want port 8000", env(kong, "KONG_PROXY_LISTEN"))
	}
	if kong.DependsOn["router"].Condition != types.ServiceConditionHealthy {
		t.Error("kong must wait for the router to be healthy")
	}
	if kong.HealthCheck == nil {
		t.Error("kong has no healthcheck")
	}
}

func TestKongRoutesToTheRouter(t *testing.T) {
	k := readKong(t)
	if len(k.Services) != 1 || len(k.Routes) > 0 || len(k.Upstreams) > 0 {
		t.Fatalf("want one service (the router) holding every route; got %d services, %d top-level routes, %d upstreams", len(k.Services), len(k.Routes), len(k.Upstreams))
	}
	svc := k.Services[0]
	u := parseURL(t, "kong service url", svc.URL)
	p := project(t)
	rt, ok := martServices(t, p)["router"]
	if !ok {
		t.Fatal("no router container")
	}
	_, port := hostPort(t, "MART_ROUTER_ADDR", env(rt, "MART_ROUTER_ADDR"))
	if u.Scheme != "http" || u.Hostname() != "router" || urlPort(u) != port || (u.Path != "" && u.Path != "/") {
		t.Errorf("kong service %s url %s, want http://router:%d (the compose router service)", svc.Name, svc.URL, port)
	}
	if svc.Retries == nil || *svc.Retries != 0 {
		t.Errorf("kong service %s: retries %v, want 0: a replayed mutation could run twice", svc.Name, svc.Retries)
	}
	checkKongRoutes(t, svc)
}

// checkKongRoutes checks that the router's service has a route for each of
// the router's paths, passing it on as is, and that one route for /graphql
// takes queries, mutations and websocket subscriptions.
func checkKongRoutes(t *testing.T, svc kongService) {
	t.Helper()
	route := func(p string) *kongRoute {
		for i, r := range svc.Routes {
			if slices.Contains(r.Paths, p) {
				return &svc.Routes[i]
			}
		}
		t.Errorf("no route for %s", p)
		return nil
	}
	for _, p := range []string{"/graphql", "/.well-known/jwks.json", "/healthz"} {
		r := route(p)
		if r == nil {
			continue
		}
		if r.StripPath == nil || *r.StripPath {
			t.Errorf("route %s strips its path: the router serves it at %s", r.Name, p)
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, "GET") {
			t.Errorf("route %s: methods %v lack GET", r.Name, r.Methods)
		}
	}
	// One route for queries, mutations and websocket subscriptions: the
	// upgrade is a GET with Upgrade: websocket, proxied by Kong OSS on
	// http/https routes.
	if g := route("/graphql"); g != nil {
		for _, want := range []string{"http", "https"} {
			if !slices.Contains(g.Protocols, want) {
				t.Errorf("route %s: protocols %v lack %s", g.Name, g.Protocols, want)
			}
		}
		if len(g.Methods) > 0 && (!slices.Contains(g.Methods, "POST") || !slices.Contains(g.Methods, "OPTIONS")) {
			t.Errorf("route %s: methods %v, want GET (and websocket upgrades), POST and OPTIONS (CORS preflight)", g.Name, g.Methods)
		}
		if len(g.Headers) > 0 {
			t.Errorf("route %s matches on headers %v: websocket upgrades and plain requests must both match", g.Name, g.Headers)
		}
	}
}

func TestKongPluginSettings(t *testing.T) {
	k := readKong(t)
	all := k.allPlugins()
	one := func(name string) map[string]any {
		ps := all[name]
		if len(ps) == 0 {
			return map[string]any{}
		}
		return ps[0].Config
	}

	rl := one("rate-limiting")
	if rl["policy"] != "local" {
		t.Errorf("rate-limiting: policy %v, want local (no Redis, no database)", rl["policy"])
	}
	if rl["limit_by"] != "ip" {
		t.Errorf("rate-limiting: limit_by %v, want ip for the global limit", rl["limit_by"])
	}
	limits := 0
	for _, period := range []string{"second", "minute", "hour", "day", "month", "year"} {
		if n, ok := rl[period].(uint64); ok && n > 0 {
			limits++
		}
	}
	if limits == 0 {
		t.Errorf("rate-limiting sets no limit: %v", rl)
	}
	// The per-consumer limits are documented with the optional jwt setup.
	if !strings.Contains(readFile(t, "kong/kong.yml"), "limit_by: ip, policy: local") {
		t.Error("kong.yml does not document per-consumer rate limits")
	}

	cid := one("correlation-id")
	if !strings.EqualFold(cid["header_name"].(string), "X-Request-Id") || cid["echo_downstream"] != true {
		t.Errorf("correlation-id: %v, want header_name X-Request-Id, echo_downstream true", cid)
	}
	// The router keeps an incoming id only when it matches
	// [A-Za-z0-9._-]{1,128}; "uuid#counter" ids would be replaced.
	if g, _ := cid["generator"].(string); g != "uuid" && g != "tracker" {
		t.Errorf("correlation-id: generator %q makes ids the router does not keep; want uuid", g)
	}

	if rs := one("request-size-limiting"); rs["allowed_payload_size"] == nil {
		t.Errorf("request-size-limiting: no allowed_payload_size: %v", rs)
	}
	cors := one("cors")
	for _, h := range []string{"Authorization", "Content-Type", "X-Request-Id"} {
		if !containsFold(cors["headers"], h) {
			t.Errorf("cors: header %s not allowed (%v)", h, cors["headers"])
		}
	}
	if !containsFold(cors["exposed_headers"], "X-Request-Id") {
		t.Errorf("cors: X-Request-Id not exposed to browsers (%v)", cors["exposed_headers"])
	}
}

func containsFold(list any, s string) bool {
	items, _ := list.([]any)
	for _, it := range items {
		if v, ok := it.(string); ok && strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
