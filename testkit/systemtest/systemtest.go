// Package systemtest starts the whole system in-process for end-to-end
// tests, as `mart serve` would, but on ephemeral ports, with an embedded
// Kafka broker and fresh databases of its own, and talks to it as a client
// does: HTTP through the router.
package systemtest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// System is a running Online Mart.
type System struct {
	RouterURL string            // http://host:port/graphql
	Services  map[string]string // service name → its own /graphql URL
	Brokers   []string          // Kafka bootstrap addresses
	Databases map[string]string // service name → database URL

	adminOnce  sync.Once
	adminToken string
}

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// The admin every system starts with.
const (
	AdminEmail    = "admin@mart.test"
	AdminPassword = "admin-password-for-tests"
)

// Start runs the given targets (default: all) until the test ends.
func Start(t testing.TB, targets ...string) *System {
	t.Helper()
	return StartWith(t, nil, targets...)
}

// StartWith is Start with environment variables set on top of the test
// defaults, e.g. a short MART_ACCESS_TOKEN_TTL.
func StartWith(t testing.TB, extraEnv map[string]string, targets ...string) *System {
	t.Helper()
	if len(targets) == 0 {
		targets = []string{"all"}
	}
	broker, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("systemtest: kafka: %v", err)
	}
	t.Cleanup(broker.Close)

	env := map[string]string{
		"MART_TARGETS":           strings.Join(targets, ","),
		"DATABASE_URL":           pgtest.ServerURL(),
		"KAFKA_BROKERS":          strings.Join(broker.Addrs(), ","),
		"MART_ROUTER_ADDR":       "127.0.0.1:0",
		"MART_SUPERGRAPH_CONFIG": filepath.Join(RepoRoot(), "supergraph.yaml"),
		"MART_SHUTDOWN_TIMEOUT":  "3s",
		"MART_ADMIN_EMAIL":       AdminEmail,
		"MART_ADMIN_PASSWORD":    AdminPassword,
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	sys := &System{Services: map[string]string{}, Brokers: broker.Addrs(), Databases: map[string]string{}}
	prefix := pgtest.NewName()
	for _, name := range system.ServiceNames() {
		up := strings.ToUpper(name)
		env["MART_"+up+"_ADDR"] = "127.0.0.1:0"
		env["MART_"+up+"_DATABASE"] = prefix + "_" + name
	}
	cfg, err := system.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("systemtest: %v", err)
	}
	for _, name := range system.ServiceNames() {
		if db := cfg.Services[name].Database; db != "" {
			sys.Databases[name], _ = postgres.WithDatabase(cfg.Runtime.DatabaseURL, db)
			t.Cleanup(func() { pgtest.Drop(t, db) })
		}
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	// Up when the router listens or, without a router, every service.
	up := make(chan struct{})
	waiting := len(cfg.Targets)
	if slices.Contains(cfg.Targets, "router") {
		waiting = 1
	}
	done := make(chan error, 1)
	var mu sync.Mutex
	go func() {
		done <- system.Run(ctx, cfg, logger, func(component string, addr net.Addr) {
			mu.Lock()
			defer mu.Unlock()
			url := "http://" + addr.String() + "/graphql"
			switch {
			case component == "router":
				sys.RouterURL = url
			case component != "kafka":
				sys.Services[component] = url
			}
			if component == "router" || (component != "kafka" && !slices.Contains(cfg.Targets, "router")) {
				if waiting--; waiting == 0 {
					close(up)
				}
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("systemtest: shutdown: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("systemtest: shutdown took longer than 30s")
		}
	})
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("systemtest: start: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("systemtest: router did not start")
	}
	return sys
}

// The GraphQL client of end-to-end tests is gqltest's, so that subgraph
// tests and system tests talk to servers one way.
type (
	// Response is a GraphQL response (gqltest.Response).
	Response = gqltest.Response
	// Error is one GraphQL error (gqltest.Error).
	Error = gqltest.Error
	// Client sends GraphQL operations to one endpoint (gqltest.Client).
	Client = gqltest.Client
	// Subscription is one GraphQL subscription over graphql-transport-ws
	// (gqltest.Subscription).
	Subscription = gqltest.Subscription
	// Message is what the server sent for a subscription (gqltest.Message).
	Message = gqltest.Message
)

// Query sends an anonymous operation through the router.
func (s *System) Query(t testing.TB, query string, vars map[string]any, out any) Response {
	t.Helper()
	return Client{URL: s.RouterURL}.Query(t, query, vars, out)
}

// MustQuery is Query that fails the test on any GraphQL error.
func (s *System) MustQuery(t testing.TB, query string, vars map[string]any, out any) {
	t.Helper()
	Client{URL: s.RouterURL}.MustQuery(t, query, vars, out)
}

// As returns a client of the router sending token.
func (s *System) As(token string) Client { return Client{URL: s.RouterURL, Token: token} }

// Login signs in through the router and returns the access token.
func (s *System) Login(t testing.TB, email, password string) string {
	t.Helper()
	var out struct {
		Login struct {
			AccessToken *string
			UserErrors  []struct{ Message string }
		}
	}
	s.MustQuery(t, `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken userErrors { message } } }`,
		map[string]any{"e": email, "p": password}, &out)
	if out.Login.AccessToken == nil {
		t.Fatalf("login %s: %+v", email, out.Login.UserErrors)
	}
	return *out.Login.AccessToken
}

// Admin returns a client signed in as the bootstrapped admin.
func (s *System) Admin(t testing.TB) Client {
	t.Helper()
	s.adminOnce.Do(func() { s.adminToken = s.Login(t, AdminEmail, AdminPassword) })
	return s.As(s.adminToken)
}

// Customer registers a new customer and returns a client signed in as
// them, and their id.
func (s *System) Customer(t testing.TB, email string) (Client, string) {
	t.Helper()
	var out struct {
		Register struct {
			User        *struct{ ID string }
			AccessToken *string
			UserErrors  []struct{ Message string }
		}
	}
	s.MustQuery(t, `mutation($e: String!) { register(input: {email: $e, password: "customer-password", name: "Test Customer"}) {
		user { id } accessToken userErrors { message } } }`, map[string]any{"e": email}, &out)
	if out.Register.User == nil || out.Register.AccessToken == nil {
		t.Fatalf("register %s: %+v", email, out.Register.UserErrors)
	}
	return s.As(*out.Register.AccessToken), out.Register.User.ID
}

// Post sends a raw body to url and decodes the GraphQL response.
func Post(t testing.TB, url, contentType string, body []byte, out any) Response {
	t.Helper()
	return gqltest.Post(t, url, contentType, body, out)
}

// Do sends req and decodes the GraphQL response.
func Do(t testing.TB, req *http.Request, out any) Response {
	t.Helper()
	return gqltest.Do(t, req, out)
}
