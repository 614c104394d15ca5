// Package kafka holds the Kafka plumbing shared by every service: an
// in-process broker for running without one, a client with the project's
// defaults, topic creation and a readiness probe.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultPartitions is the partition count of topics the embedded broker
// creates on first use. Several partitions keep per-key ordering honest in
// development: a bug that relies on global order shows up locally.
const DefaultPartitions = 3

// Embedded is an in-process single-broker Kafka cluster speaking the real
// protocol on a TCP address, so services (and kcat) connect to it exactly
// as to a real broker. Its data lives in memory, or in a directory that a
// later broker started on it reloads.
type Embedded struct {
	cluster *kfake.Cluster
}

// EmbeddedOptions say where the embedded broker listens and keeps its data.
type EmbeddedOptions struct {
	// Addr is the listen address; "127.0.0.1:0" picks a free port.
	Addr string
	// DataDir, when set, persists topics, records and committed offsets
	// there (reloaded on start), so a restart loses nothing that was
	// acknowledged before a clean stop. Writes are not fsynced per batch,
	// as in Kafka's default: the OS flushes them.
	DataDir string
	// Logger receives the broker's warnings and errors; default slog's.
	Logger *slog.Logger
}

// StartEmbedded starts a one-broker cluster. Topics are created on first
// use.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake always asks for 127.0.0.1:<port>; listen where we were told.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, o.Addr)
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.WithLogger(kfakeLogger{logger.With("component", "kafka-embedded")}),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		// kfake's errors name the address (listen) or the data (loading,
		// persisting); callers say it was the embedded broker.
		return nil, err
	}
	return &Embedded{cluster: c}, nil
}

// Fake returns the underlying kfake cluster, for tests that inject faults
// into the protocol (delays, errors).
func (e *Embedded) Fake() *kfake.Cluster { return e.cluster }

// Addrs returns the broker addresses to give clients as seed brokers.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Cluster is how clients reach the broker.
func (e *Embedded) Cluster() Cluster { return Cluster{Brokers: e.Addrs()} }

// Close stops the broker, saving its state when it has a DataDir; without
// one its data is gone.
func (e *Embedded) Close() { e.cluster.Close() }

// kfakeLogger routes the fake broker's logs to slog. Its info level logs
// every request, which is debug noise for us.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	default:
		l = slog.LevelDebug
	}
	ctx := context.Background()
	if k.l.Enabled(ctx, l) {
		k.l.Log(ctx, l, fmt.Sprintf(format, args...))
	}
}

// Cluster is where the brokers are and how to reach them.
type Cluster struct {
	Brokers []string
	// TLS, when set, encrypts every connection and verifies the brokers.
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL sasl.Mechanism
}

// NewClient returns a franz-go client of the cluster with the project's
// defaults; opts are applied after them and win.
//
// Defaults: topics are auto-created on produce (the embedded broker allows
// it; a real cluster may not, see EnsureTopics). The producer is idempotent
// (kgo's default) and the default partitioner sends equal keys to one
// partition, which together keep each key's records in order.
//
// A record that cannot be delivered within 30s, or whose context ends,
// fails instead of waiting for the broker forever, even if it may already
// have been written: callers then see an outage as an error, retry with
// backoff and can shut down. The price is a possible duplicate on retry,
// which our consumers absorb (inbox).
func (c Cluster) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	all := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.AllowIdempotentProduceCancellation(),
	}
	if c.TLS != nil {
		all = append(all, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.SASL != nil {
		all = append(all, kgo.SASL(c.SASL))
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Security is how to reach a secured cluster, as configured (KAFKA_TLS…,
// KAFKA_SASL_…).
type Security struct {
	TLS           bool
	CAFile        string // PEM bundle of the brokers' CAs; empty: the system's
	SASLMechanism string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	SASLUsername  string
	SASLPassword  string
}

// Secure returns the cluster of brokers reached with s.
func Secure(brokers []string, s Security) (Cluster, error) {
	c := Cluster{Brokers: brokers}
	if s.TLS {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return c, fmt.Errorf("kafka CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("kafka CA file %s: no PEM certificate in it", s.CAFile)
			}
			c.TLS.RootCAs = pool
		}
	}
	auth := scram.Auth{User: s.SASLUsername, Pass: s.SASLPassword}
	switch s.SASLMechanism {
	case "":
	case "PLAIN":
		c.SASL = plain.Auth{User: s.SASLUsername, Pass: s.SASLPassword}.AsMechanism()
	case "SCRAM-SHA-256":
		c.SASL = auth.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		c.SASL = auth.AsSha512Mechanism()
	default:
		return c, fmt.Errorf("kafka SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.SASLMechanism)
	}
	return c, nil
}

// EnsureTopics creates topics with the given partition count (-1: the
// broker default) if they do not exist yet. Existing topics are left as
// they are, whatever their partition count.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	// kadm wraps cl without owning it: we must not Close the admin client.
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// Ping reports whether a broker answers, for readiness checks.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka ping: %w", err)
	}
	return nil
}
