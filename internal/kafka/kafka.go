// Package kafka holds the Kafka plumbing shared by every service: an
// in-process broker for running without one, a client with the project's
// defaults, topic creation and a readiness probe.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPartitions is the partition count of topics the embedded broker
// creates on first use. Several partitions keep per-key ordering honest in
// development: a bug that relies on global order shows up locally.
const DefaultPartitions = 3

// Embedded is an in-process, in-memory single-broker Kafka cluster speaking
// the real protocol on a TCP address, so services (and kcat) connect to it
// exactly as to a real broker. Its data lives only as long as the process.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a one-broker cluster listening on addr
// ("127.0.0.1:0" picks a free port). Topics are created on first use.
func StartEmbedded(addr string, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		// kfake always asks for 127.0.0.1:<port>; listen where we were told.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.WithLogger(kfakeLogger{logger.With("component", "kafka-embedded")}),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka on %s: %w", addr, err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker addresses to give clients as seed brokers.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker; its data is gone.
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

// NewClient returns a franz-go client for brokers with the project's
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
func NewClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.AllowIdempotentProduceCancellation(),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
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
