package kafka

import (
	"errors"

	"github.com/onlinemart/mart/internal/envvar"
)

// Config is how a process reaches Kafka: a cluster of brokers, or the
// in-process broker when none is named.
type Config struct {
	Brokers  []string // empty: run the embedded broker
	Security Security
	// EmbeddedAddr is where the in-process broker listens.
	EmbeddedAddr string
	// EmbeddedDataDir persists the in-process broker; "" keeps it in memory.
	EmbeddedDataDir string
}

// Vars declares the Kafka settings.
func (c *Config) Vars() []envvar.Var {
	s := &c.Security
	return []envvar.Var{
		envvar.List(&c.Brokers, "KAFKA_BROKERS", "", "comma list of Kafka brokers; empty starts an in-process broker"),
		envvar.Bool(&s.TLS, "KAFKA_TLS", "false", "connect to the brokers over TLS"),
		envvar.String(&s.CAFile, "KAFKA_TLS_CA_FILE", "", "PEM file of the CAs that sign the brokers' certificates; empty: the system's"),
		envvar.OneOf(&s.SASLMechanism, "KAFKA_SASL_MECHANISM", "", "authenticate to the brokers with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL",
			"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
		envvar.String(&s.SASLUsername, "KAFKA_SASL_USERNAME", "", "SASL user"),
		envvar.String(&s.SASLPassword, "KAFKA_SASL_PASSWORD", "", "SASL password"),
		envvar.String(&c.EmbeddedAddr, "MART_KAFKA_EMBEDDED_ADDR", "127.0.0.1:9092", "listen address of the in-process broker when KAFKA_BROKERS is empty"),
		envvar.String(&c.EmbeddedDataDir, "MART_KAFKA_EMBEDDED_DATA_DIR", "", "directory where the in-process broker keeps its topics and offsets across restarts; empty: memory only"),
	}
}

// Check reports settings that are wrong together.
func (c *Config) Check() error {
	if c.Security.SASLMechanism != "" && c.Security.SASLUsername == "" {
		return errors.New("KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM")
	}
	return nil
}
