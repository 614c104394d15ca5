package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/config"
)

func load(env map[string]string) (*config.Config, error) {
	return config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestDefaultsWorkLocally(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 7 || c.Targets[len(c.Targets)-1] != "router" {
		t.Errorf("targets %v: want every service, router last", c.Targets)
	}
	if c.Router.Addr != "127.0.0.1:4000" || c.Services["product"].Addr != "127.0.0.1:4002" || c.Services["notification"].Addr != "127.0.0.1:4006" {
		t.Errorf("default addresses: %+v %+v", c.Router, c.Services)
	}
	if c.Services["product"].Database != "mart_product" || len(c.KafkaBrokers) != 0 || c.Router.RequestTimeout != 30*time.Second {
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
	if strings.Join(c.Targets, ",") != "product,router" || len(c.KafkaBrokers) != 2 ||
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
	if s := c.KafkaSecurity; !s.TLS || s.SASLMechanism != "SCRAM-SHA-512" || s.SASLUsername != "mart" || s.SASLPassword != "pw" {
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
