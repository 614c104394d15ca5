// Package config reads Online Mart's settings from the environment. Every
// variable has a working local default so `mart serve` runs with none set.
// The table of variables is the single source for both loading and `--help`.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/onlinemart/mart/internal/kafka"
)

// Services lists the subgraph services in start order, with default ports.
var Services = []struct {
	Name string
	Port int
}{
	{"user", 4001}, {"product", 4002}, {"order", 4003},
	{"inventory", 4004}, {"payment", 4005}, {"notification", 4006},
}

// Var describes one environment variable.
type Var struct {
	Name    string
	Default string
	Help    string
}

// Vars returns every environment variable mart reads, in help order.
func Vars() []Var {
	vars := []Var{
		{"MART_TARGETS", "all", "components to run: all, or a comma list of router," + strings.Join(ServiceNames(), ",")},
		{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres server URL; each service derives its own database (mart_<service>) from it"},
		{"MART_INBOX_RETENTION", "168h", "how long a service remembers the events it handled, to skip redeliveries; at least the topics' retention"},
		{"MART_PRUNE_INTERVAL", "1h", "how often a service deletes rows whose retention ended (inbox entries, expired sessions)"},
		{"MART_DB_MAX_CONNS", "20", "connections each service process may open to its database (plus one for its outbox relay)"},
		{"KAFKA_BROKERS", "", "comma list of Kafka brokers; empty starts an in-process broker"},
		{"KAFKA_TLS", "false", "connect to the brokers over TLS"},
		{"KAFKA_TLS_CA_FILE", "", "PEM file of the CAs that sign the brokers' certificates; empty: the system's"},
		{"KAFKA_SASL_MECHANISM", "", "authenticate to the brokers with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL"},
		{"KAFKA_SASL_USERNAME", "", "SASL user"},
		{"KAFKA_SASL_PASSWORD", "", "SASL password"},
		{"MART_KAFKA_EMBEDDED_ADDR", "127.0.0.1:9092", "listen address of the in-process broker when KAFKA_BROKERS is empty"},
		{"MART_KAFKA_EMBEDDED_DATA_DIR", "", "directory where the in-process broker keeps its topics and offsets across restarts; empty: memory only"},
		{"MART_ROUTER_ADDR", "127.0.0.1:4000", "router listen address (GraphQL at /graphql)"},
		{"MART_SUPERGRAPH_CONFIG", "supergraph.yaml", "file listing the subgraphs the router composes"},
		{"MART_MAX_BODY_BYTES", "1048576", "router: largest accepted request body and websocket message"},
		{"MART_MAX_DEPTH", "15", "router: deepest accepted selection nesting"},
		{"MART_MAX_ALIASES", "30", "router: most aliases in one operation"},
		{"MART_MAX_ROOT_FIELDS", "20", "router: most root fields in one operation"},
		{"MART_MAX_TOKENS", "15000", "router: most lexical tokens in one GraphQL document; -1: no limit"},
		{"MART_MAX_FIELDS", "2000", "router: most fields in one operation once its fragments are expanded; -1: no limit"},
		{"MART_MAX_DUPLICATE_FIELDS", "500", "router: most fields that repeat a sibling's response name (alias or name) in one operation; -1: no limit"},
		{"MART_WS_MAX_OPERATIONS", "100", "router: most operations running at once on one websocket connection; -1: no limit"},
		{"MART_WS_MAX_CONNS_PER_CLIENT", "100", "router: most websocket connections open at once from one client address; -1: no limit"},
		{"MART_TRUSTED_PROXIES", "", "router: comma list of proxy addresses or CIDRs (Kong) whose X-Forwarded-For names the client; empty: the peer address is the client"},
		{"MART_REQUEST_TIMEOUT", "30s", "router: time limit for one request, subgraph calls included"},
		{"MART_SUBGRAPH_CONNS", "32", "router: most HTTP requests in flight to one subgraph (more wait in the router); -1: no limit"},
		{"MART_PLAYGROUND", "true", "router: serve the GraphiQL playground at / (and at /graphql to browsers); false: 404"},
		{"MART_INTROSPECTION", "true", "router: answer __schema and __type queries; false refuses them (GRAPHQL_VALIDATION_FAILED)"},
		{"MART_HTTP_READ_HEADER_TIMEOUT", "10s", "every HTTP server: time to read a request's headers"},
		{"MART_HTTP_READ_TIMEOUT", "30s", "every HTTP server: time to read a whole request, body included (websockets are exempt once upgraded)"},
		{"MART_HTTP_WRITE_TIMEOUT", "45s", "every HTTP server: time from a request's headers to the end of its response; keep it above MART_REQUEST_TIMEOUT (websockets are exempt)"},
		{"MART_HTTP_IDLE_TIMEOUT", "120s", "every HTTP server: how long a keep-alive connection may wait for its next request"},
		{"MART_SUBGRAPH_MAX_BODY_BYTES", "8388608", "subgraphs: largest accepted request body (the router's entity fetches can outgrow a client's body)"},
		{"MART_SUBGRAPH_MAX_TOKENS", "15000", "subgraphs: most lexical tokens in one GraphQL document"},
		{"MART_SHUTDOWN_TIMEOUT", "20s", "time allowed to drain requests and handlers on shutdown"},
		{"MART_JWT_ISSUER", "mart", "iss claim of access tokens"},
		{"MART_JWT_AUDIENCE", "mart-api", "aud claim of access tokens"},
		{"MART_JWKS_URL", "", "where the router and subgraphs fetch the token keys; empty: the user service's /.well-known/jwks.json"},
		{"MART_JWT_KEY_FILE", "", "user service: PEM file of Ed25519 private keys, first one signs; empty: keys generated once and kept in the user database"},
		{"MART_ACCESS_TOKEN_TTL", "15m", "user service: lifetime of access tokens"},
		{"MART_REFRESH_TOKEN_TTL", "720h", "user service: lifetime of refresh tokens"},
		{"MART_ADMIN_EMAIL", "", "user service: ensure an ADMIN with this email exists at start (with MART_ADMIN_PASSWORD)"},
		{"MART_ADMIN_PASSWORD", "", "user service: password of that first admin"},
		{"MART_SMTP_ADDR", "", "notification service: SMTP server host:port; empty writes emails to the log"},
		{"MART_SMTP_USERNAME", "", "notification service: SMTP auth user (PLAIN, only over TLS)"},
		{"MART_SMTP_PASSWORD", "", "notification service: SMTP auth password"},
		{"MART_SMTP_STARTTLS", "auto", "notification service: STARTTLS auto (when offered), always, or never"},
		{"MART_SMTP_FROM", "Online Mart <no-reply@mart.local>", "notification service: From of every email"},
		{"MART_SMS_URL", "", "notification service: SMS provider endpoint; empty writes texts to the log"},
		{"MART_SMS_TOKEN", "", "notification service: bearer token for the SMS provider"},
		{"MART_SMS_FORMAT", "json", "notification service: SMS request body, json or form"},
		{"MART_LOG_LEVEL", "info", "debug, info, warn or error"},
		{"MART_LOG_FORMAT", "text", "text or json"},
		{"MART_PPROF_ADDR", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off. Keep it private"},
	}
	for _, s := range Services {
		up := strings.ToUpper(s.Name)
		vars = append(vars,
			Var{"MART_" + up + "_ADDR", fmt.Sprintf("127.0.0.1:%d", s.Port), s.Name + " subgraph listen address"},
			Var{"MART_" + up + "_DATABASE", "mart_" + s.Name, s.Name + " database name on the DATABASE_URL server"},
			Var{"MART_" + up + "_ROUTING_URL", "", "router: overrides the " + s.Name + " routing URL from the supergraph config"},
		)
	}
	return vars
}

// ServiceNames returns the names of all subgraph services.
func ServiceNames() []string {
	names := make([]string, len(Services))
	for i, s := range Services {
		names[i] = s.Name
	}
	return names
}

// Service holds the settings of one subgraph service.
type Service struct {
	Name     string
	Addr     string
	Database string // database name on the server
}

// Router holds the router's settings.
type Router struct {
	Addr             string
	SupergraphConfig string
	RoutingURLs      map[string]string // overrides by subgraph name
	MaxBodyBytes     int64
	MaxDepth         int
	MaxAliases       int
	MaxRootFields    int
	MaxTokens        int // -1: no limit, as for the next four
	MaxFields        int
	MaxDuplicates    int
	WSMaxOperations  int
	WSMaxConns       int      // per client address
	TrustedProxies   []string // addresses or CIDRs
	RequestTimeout   time.Duration
	SubgraphConns    int // -1: no limit
	Playground       bool
	Introspection    bool
}

// HTTP holds the timeouts of every HTTP server mart runs.
type HTTP struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// Subgraph holds the limits every subgraph's GraphQL handler applies.
type Subgraph struct {
	MaxBodyBytes int64
	MaxTokens    int
}

// Auth holds the token settings shared by the issuer and every verifier.
type Auth struct {
	Issuer          string
	Audience        string
	JWKSURL         string // empty: derived from where the user service is
	KeyFile         string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	AdminEmail      string
	AdminPassword   string
}

// Notify holds the notification service's delivery settings.
type Notify struct {
	SMTPAddr     string
	SMTPUsername string
	SMTPPassword string
	SMTPStartTLS string // auto, always or never
	SMTPFrom     string
	SMSURL       string
	SMSToken     string
	SMSFormat    string // json or form
}

// Config is the whole configuration of one mart process.
type Config struct {
	Targets           []string
	DatabaseURL       string
	DBMaxConns        int // per service process
	InboxRetention    time.Duration
	PruneInterval     time.Duration
	KafkaBrokers      []string // empty: run the embedded broker
	KafkaSecurity     kafka.Security
	KafkaEmbeddedAddr string
	// KafkaEmbeddedDataDir persists the embedded broker; "" keeps it in memory.
	KafkaEmbeddedDataDir string
	Router               Router
	Services             map[string]Service
	HTTP                 HTTP
	Subgraph             Subgraph
	Auth                 Auth
	Notify               Notify
	ShutdownTimeout      time.Duration
	LogLevel             string
	LogFormat            string
	PprofAddr            string // empty: no profiler endpoint
}

// Load reads the configuration from the environment.
func Load() (*Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads the configuration through lookup, for tests.
func LoadFrom(lookup func(string) (string, bool)) (*Config, error) {
	defaults := map[string]string{}
	for _, v := range Vars() {
		defaults[v.Name] = v.Default
	}
	var errs []string
	get := func(name string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return defaults[name]
	}
	getInt := func(name string) int {
		n, err := strconv.Atoi(get(name))
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Sprintf("%s: want a positive integer, got %q", name, get(name)))
		}
		return n
	}
	getLimit := func(name string) int { // a positive number, or -1 for none
		if get(name) == "-1" {
			return -1
		}
		return getInt(name)
	}
	getBool := func(name string) bool {
		b, err := strconv.ParseBool(get(name))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: want true or false, got %q", name, get(name)))
		}
		return b
	}
	getDuration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s: want a positive duration such as 30s, got %q", name, get(name)))
		}
		return d
	}

	c := &Config{
		DatabaseURL:    get("DATABASE_URL"),
		DBMaxConns:     getInt("MART_DB_MAX_CONNS"),
		InboxRetention: getDuration("MART_INBOX_RETENTION"),
		PruneInterval:  getDuration("MART_PRUNE_INTERVAL"),
		KafkaBrokers:   splitList(get("KAFKA_BROKERS")),
		KafkaSecurity: kafka.Security{
			TLS: getBool("KAFKA_TLS"), CAFile: get("KAFKA_TLS_CA_FILE"),
			SASLMechanism: get("KAFKA_SASL_MECHANISM"), SASLUsername: get("KAFKA_SASL_USERNAME"), SASLPassword: get("KAFKA_SASL_PASSWORD"),
		},
		KafkaEmbeddedAddr:    get("MART_KAFKA_EMBEDDED_ADDR"),
		KafkaEmbeddedDataDir: get("MART_KAFKA_EMBEDDED_DATA_DIR"),
		Router: Router{
			Addr:             get("MART_ROUTER_ADDR"),
			SupergraphConfig: get("MART_SUPERGRAPH_CONFIG"),
			RoutingURLs:      map[string]string{},
			MaxBodyBytes:     int64(getInt("MART_MAX_BODY_BYTES")),
			MaxDepth:         getInt("MART_MAX_DEPTH"),
			MaxAliases:       getInt("MART_MAX_ALIASES"),
			MaxRootFields:    getInt("MART_MAX_ROOT_FIELDS"),
			MaxTokens:        getLimit("MART_MAX_TOKENS"),
			MaxFields:        getLimit("MART_MAX_FIELDS"),
			MaxDuplicates:    getLimit("MART_MAX_DUPLICATE_FIELDS"),
			WSMaxOperations:  getLimit("MART_WS_MAX_OPERATIONS"),
			WSMaxConns:       getLimit("MART_WS_MAX_CONNS_PER_CLIENT"),
			TrustedProxies:   splitList(get("MART_TRUSTED_PROXIES")),
			RequestTimeout:   getDuration("MART_REQUEST_TIMEOUT"),
			SubgraphConns:    getLimit("MART_SUBGRAPH_CONNS"),
			Playground:       getBool("MART_PLAYGROUND"),
			Introspection:    getBool("MART_INTROSPECTION"),
		},
		Services: map[string]Service{},
		HTTP: HTTP{
			ReadHeaderTimeout: getDuration("MART_HTTP_READ_HEADER_TIMEOUT"),
			ReadTimeout:       getDuration("MART_HTTP_READ_TIMEOUT"),
			WriteTimeout:      getDuration("MART_HTTP_WRITE_TIMEOUT"),
			IdleTimeout:       getDuration("MART_HTTP_IDLE_TIMEOUT"),
		},
		Subgraph: Subgraph{
			MaxBodyBytes: int64(getInt("MART_SUBGRAPH_MAX_BODY_BYTES")),
			MaxTokens:    getInt("MART_SUBGRAPH_MAX_TOKENS"),
		},
		Auth: Auth{
			Issuer:          get("MART_JWT_ISSUER"),
			Audience:        get("MART_JWT_AUDIENCE"),
			JWKSURL:         get("MART_JWKS_URL"),
			KeyFile:         get("MART_JWT_KEY_FILE"),
			AccessTokenTTL:  getDuration("MART_ACCESS_TOKEN_TTL"),
			RefreshTokenTTL: getDuration("MART_REFRESH_TOKEN_TTL"),
			AdminEmail:      get("MART_ADMIN_EMAIL"),
			AdminPassword:   get("MART_ADMIN_PASSWORD"),
		},
		Notify: Notify{
			SMTPAddr: get("MART_SMTP_ADDR"), SMTPUsername: get("MART_SMTP_USERNAME"), SMTPPassword: get("MART_SMTP_PASSWORD"),
			SMTPStartTLS: get("MART_SMTP_STARTTLS"), SMTPFrom: get("MART_SMTP_FROM"),
			SMSURL: get("MART_SMS_URL"), SMSToken: get("MART_SMS_TOKEN"), SMSFormat: get("MART_SMS_FORMAT"),
		},
		ShutdownTimeout: getDuration("MART_SHUTDOWN_TIMEOUT"),
		LogLevel:        get("MART_LOG_LEVEL"),
		LogFormat:       get("MART_LOG_FORMAT"),
		PprofAddr:       get("MART_PPROF_ADDR"),
	}
	switch m := c.KafkaSecurity.SASLMechanism; {
	case m != "" && m != "PLAIN" && m != "SCRAM-SHA-256" && m != "SCRAM-SHA-512":
		errs = append(errs, fmt.Sprintf("KAFKA_SASL_MECHANISM: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", m))
	case m != "" && c.KafkaSecurity.SASLUsername == "":
		errs = append(errs, "KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM")
	}
	if t := c.Notify.SMTPStartTLS; t != "auto" && t != "always" && t != "never" {
		errs = append(errs, fmt.Sprintf("MART_SMTP_STARTTLS: want auto, always or never, got %q", t))
	}
	if f := c.Notify.SMSFormat; f != "json" && f != "form" {
		errs = append(errs, fmt.Sprintf("MART_SMS_FORMAT: want json or form, got %q", f))
	}
	if _, err := url.Parse(c.DatabaseURL); err != nil {
		errs = append(errs, fmt.Sprintf("DATABASE_URL: %v", err))
	}
	for _, s := range Services {
		up := strings.ToUpper(s.Name)
		c.Services[s.Name] = Service{Name: s.Name, Addr: get("MART_" + up + "_ADDR"), Database: get("MART_" + up + "_DATABASE")}
		if u := get("MART_" + up + "_ROUTING_URL"); u != "" {
			c.Router.RoutingURLs[s.Name] = u
		}
	}
	targets, err := ParseTargets(get("MART_TARGETS"))
	if err != nil {
		errs = append(errs, "MART_TARGETS: "+err.Error())
	}
	c.Targets = targets
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// ParseTargets expands a comma list of targets; "all" means every component.
func ParseTargets(s string) ([]string, error) {
	known := map[string]bool{"router": true}
	for _, n := range ServiceNames() {
		known[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, t := range splitList(s) {
		switch {
		case t == "all":
			for _, n := range append(ServiceNames(), "router") {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		case known[t]:
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		default:
			return nil, fmt.Errorf("unknown target %q", t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no targets given")
	}
	return out, nil
}

// DatabaseURLFor returns the server URL with its database replaced by name.
func (c *Config) DatabaseURLFor(name string) string {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return c.DatabaseURL
	}
	u.Path = "/" + name
	return u.String()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
