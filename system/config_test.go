package system_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/system"
)

func load(env map[string]string) (*system.Config, error) {
	return system.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestDefaultsWorkLocally(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != len(system.Targets) || c.Targets[len(c.Targets)-1] != "router" {
		t.Errorf("targets %v: want every service, router last", c.Targets)
	}
	if c.Router.Addr != "127.0.0.1:4000" || c.Services["product"].Addr != "127.0.0.1:4002" || c.Services["notification"].Addr != "127.0.0.1:4006" {
		t.Errorf("default addresses: %+v %+v", c.Router, c.Services)
	}
	if c.Services["product"].Database != "mart_product" || len(c.Kafka.Brokers) != 0 || c.Router.RequestTimeout != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestOverrides(t *testing.T) {
	c, err := load(map[string]string{
		"MART_TARGETS": "product, router", "KAFKA_BROKERS": "k1:9092,k2:9092",
		"MART_PRODUCT_DATABASE": "catalog", "MART_PRODUCT_ROUTING_URL": "http://product:4002/graphql",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Targets, ",") != "product,router" || len(c.Kafka.Brokers) != 2 ||
		c.Services["product"].Database != "catalog" || c.Router.RoutingURLs["product"] != "http://product:4002/graphql" {
		t.Errorf("overrides not applied: %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	_, err := load(map[string]string{"MART_TARGETS": "shop", "MART_MAX_DEPTH": "-1", "MART_REQUEST_TIMEOUT": "soon",
		"KAFKA_TLS": "yes please", "KAFKA_SASL_MECHANISM": "GSSAPI", "MART_DB_MAX_CONNS": "0"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"MART_TARGETS", "MART_MAX_DEPTH", "MART_REQUEST_TIMEOUT", "KAFKA_TLS", "KAFKA_SASL_MECHANISM", "MART_DB_MAX_CONNS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestKafkaSecurity(t *testing.T) {
	c, err := load(map[string]string{"KAFKA_BROKERS": "k1:9093", "KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME": "mart", "KAFKA_SASL_PASSWORD": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Kafka.Security; !s.TLS || s.SASLMechanism != "SCRAM-SHA-512" || s.SASLUsername != "mart" || s.SASLPassword != "pw" {
		t.Errorf("security %+v", s)
	}
	if _, err := load(map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN"}); err == nil || !strings.Contains(err.Error(), "KAFKA_SASL_USERNAME") {
		t.Errorf("a mechanism without a user: %v", err)
	}
}

func TestPlaygroundAndIntrospectionSwitches(t *testing.T) {
	c, err := load(nil)
	if err != nil || !c.Router.Playground || !c.Router.Introspection {
		t.Fatalf("defaults: %+v %v", c.Router, err)
	}
	c, err = load(map[string]string{"MART_PLAYGROUND": "false", "MART_INTROSPECTION": "false"})
	if err != nil || c.Router.Playground || c.Router.Introspection {
		t.Fatalf("switched off: %+v %v", c.Router, err)
	}
	if _, err := load(map[string]string{"MART_PLAYGROUND": "maybe"}); err == nil || !strings.Contains(err.Error(), "MART_PLAYGROUND") {
		t.Errorf("bad value: %v", err)
	}
}

// Every server's timeouts and the subgraphs' limits have working defaults,
// the same as httpserver's and gqlserver's own, and can be changed.
func TestHTTPTimeoutsAndSubgraphLimits(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (httpserver.Timeouts{ReadHeaderTimeout: httpserver.DefaultReadHeaderTimeout, ReadTimeout: httpserver.DefaultReadTimeout,
		WriteTimeout: httpserver.DefaultWriteTimeout, IdleTimeout: httpserver.DefaultIdleTimeout, ShutdownTimeout: 20 * time.Second}); c.HTTP != want {
		t.Errorf("HTTP defaults %+v, want %+v", c.HTTP, want)
	}
	if c.HTTP.WriteTimeout <= c.Router.RequestTimeout {
		t.Errorf("write timeout %v must exceed the router's request timeout %v, or a slow answer is cut instead of answered 504", c.HTTP.WriteTimeout, c.Router.RequestTimeout)
	}
	if want := (gqlserver.Limits{MaxBodyBytes: gqlserver.DefaultMaxBodyBytes, MaxTokens: gqlserver.DefaultMaxTokens}); c.Runtime.Limits != want {
		t.Errorf("subgraph defaults %+v, want %+v", c.Runtime.Limits, want)
	}
	c, err = load(map[string]string{"MART_HTTP_READ_HEADER_TIMEOUT": "1s", "MART_HTTP_READ_TIMEOUT": "2s", "MART_HTTP_WRITE_TIMEOUT": "3s",
		"MART_HTTP_IDLE_TIMEOUT": "4s", "MART_SUBGRAPH_MAX_BODY_BYTES": "1024", "MART_SUBGRAPH_MAX_TOKENS": "500"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (httpserver.Timeouts{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second, ShutdownTimeout: c.HTTP.ShutdownTimeout}); c.HTTP != want {
		t.Errorf("HTTP overrides %+v, want %+v", c.HTTP, want)
	}
	if want := (gqlserver.Limits{MaxBodyBytes: 1024, MaxTokens: 500}); c.Runtime.Limits != want {
		t.Errorf("subgraph overrides %+v, want %+v", c.Runtime.Limits, want)
	}
	_, err = load(map[string]string{"MART_HTTP_READ_TIMEOUT": "0s", "MART_HTTP_IDLE_TIMEOUT": "never", "MART_SUBGRAPH_MAX_BODY_BYTES": "0", "MART_SUBGRAPH_MAX_TOKENS": "-1"})
	for _, name := range []string{"MART_HTTP_READ_TIMEOUT", "MART_HTTP_IDLE_TIMEOUT", "MART_SUBGRAPH_MAX_BODY_BYTES", "MART_SUBGRAPH_MAX_TOKENS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
