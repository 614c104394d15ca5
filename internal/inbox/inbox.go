// Package inbox implements idempotent event consumers. Each record is
// handled in one database transaction that also records its event id in
// the inbox table, so a redelivered event (a relay crash, a rebalance, a
// restart) is recognised and skipped. Offsets are committed only after that
// transaction, so nothing is lost either. A record that cannot be decoded,
// or whose handler keeps failing, goes to the group's dead-letter topic and
// the consumer moves on.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/pause"
)

// Headers added to a dead-lettered record, next to the original ones.
const (
	HeaderDLQError     = "dlq_error"
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
	HeaderDLQConsumer  = "dlq_consumer"
)

// Outcomes counted by mart_inbox_handled_total.
const (
	OutcomeHandled   = "handled"   // the handler's transaction committed
	OutcomeDuplicate = "duplicate" // already handled before: skipped
	OutcomeUnhandled = "unhandled" // no handler for the type: skipped
	OutcomeFailed    = "failed"    // one handler attempt failed (retried or dead-lettered)
)

// maxPollRecords bounds the records handled between two polls: rebalances
// wait for them (BlockRebalanceOnPoll), so the batch must stay short.
const maxPollRecords = 100

var (
	handledTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_inbox_handled_total",
		Help: "Consumed events by consumer group, event type and outcome.",
	}, []string{"consumer", "type", "outcome"})
	deadLetteredTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_inbox_dead_lettered_total",
		Help: "Records sent to the dead-letter topic, by consumer group and reason (malformed, failed).",
	}, []string{"consumer", "reason"})
)

// Options tune a Consumer; zero values take the defaults.
type Options struct {
	MaxAttempts    int           // handler attempts before dead-lettering; default 5
	InitialBackoff time.Duration // delay before the first retry, then doubling; default 200ms
	MaxBackoff     time.Duration // longest delay between retries; default 5s
	HandlerTimeout time.Duration // limit of one handler attempt; default 30s
	Logger         *slog.Logger  // default slog.Default()
	ClientOpts     []kgo.Opt     // extra franz-go options, applied last
}

// HandlerFunc handles one event inside tx; returning an error rolls tx
// back and retries the event.
type HandlerFunc[T proto.Message] func(ctx context.Context, tx bun.Tx, meta events.Meta, msg T) error

type handler func(ctx context.Context, tx bun.Tx, meta events.Meta, msg proto.Message) error

// Handlers are a service's event handlers by event type. A service fills
// them with Handle; the runtime consumes with them. The zero value is
// empty and ready to use.
type Handlers struct {
	byType map[string]handler
}

// Handle registers fn for events of message type T (e.g.
// *productv1.ProductCreated). Registering a type twice panics. Events of
// types without a handler are skipped.
func Handle[T proto.Message](h *Handlers, fn HandlerFunc[T]) {
	var zero T // a typed nil is enough to reach the descriptor
	name := events.TypeOf(zero)
	if _, dup := h.byType[name]; dup {
		panic("inbox: second handler for " + name)
	}
	if h.byType == nil {
		h.byType = map[string]handler{}
	}
	h.byType[name] = func(ctx context.Context, tx bun.Tx, meta events.Meta, msg proto.Message) error {
		m, ok := msg.(T)
		if !ok {
			return fmt.Errorf("%s decoded as %T", name, msg)
		}
		return fn(ctx, tx, meta, m)
	}
}

// Types returns the event types that have a handler, sorted.
func (h *Handlers) Types() []string {
	return slices.Sorted(maps.Keys(h.byType))
}

// Deliver runs the handler of msg's type in tx, as the consumer does after
// claiming the event; meta.Type is taken from msg. It is how tests hand a
// service an event without Kafka.
func (h *Handlers) Deliver(ctx context.Context, tx bun.Tx, meta events.Meta, msg proto.Message) error {
	meta.Type = events.TypeOf(msg)
	fn, ok := h.byType[meta.Type]
	if !ok {
		return fmt.Errorf("no handler for %s", meta.Type)
	}
	return fn(ctx, tx, meta, msg)
}

// Consumer consumes topics as one consumer group and hands each event to
// the handler registered for its type.
type Consumer struct {
	db       *bun.DB
	cl       *kgo.Client
	group    string
	opts     Options
	log      *slog.Logger
	handlers map[string]handler
}

// New returns a consumer of topics for group that hands events to
// handlers, recording handled events in db's inbox table. It owns its
// Kafka client, which Run closes. A group that never committed starts at
// the beginning of each topic.
func New(db *bun.DB, cluster kafka.Cluster, group string, topics []string, handlers *Handlers, opts Options) (*Consumer, error) {
	if group == "" || len(topics) == 0 {
		return nil, errors.New("inbox: a group and at least one topic are required")
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.HandlerTimeout <= 0 {
		opts.HandlerTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	kopts := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		// We commit ourselves, after the database transaction...
		kgo.DisableAutoCommit(),
		// ...and a rebalance waits until we did, so partitions are never
		// handed to another member with handled but uncommitted records.
		kgo.BlockRebalanceOnPoll(),
		// A member that dies without leaving (a crash, SIGKILL, a lost node)
		// keeps its partitions until its session expires: kgo's default of
		// 45s stalled the dead replica's events that long (make scale-test).
		// Heartbeats every second keep live members well inside 10s.
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
	}, opts.ClientOpts...)
	cl, err := cluster.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: %w", group, err)
	}
	return &Consumer{
		db:       db,
		cl:       cl,
		group:    group,
		opts:     opts,
		log:      opts.Logger.With("component", "inbox", "consumer", group),
		handlers: maps.Clone(handlers.byType),
	}, nil
}

// Run consumes until ctx is cancelled. It then lets the in-flight handler
// finish, commits what was handled, leaves the group and returns nil.
// Run must be called once.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.cl.CloseAllowingRebalance()
	for {
		fetches := c.cl.PollRecords(ctx, maxPollRecords)
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch failed", "topic", topic, "partition", partition, "err", err)
			}
		})
		// The iterator yields each partition's records in offset order.
		var done []*kgo.Record
		for it := fetches.RecordIter(); !it.Done() && ctx.Err() == nil; {
			r := it.Next()
			if !c.process(ctx, r) {
				break // shutting down mid-retry: r stays uncommitted
			}
			done = append(done, r)
		}
		c.commit(ctx, done)
		c.cl.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// commit commits the offsets after done, even during shutdown.
func (c *Consumer) commit(ctx context.Context, done []*kgo.Record) {
	if len(done) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// A failed commit only means redelivery, which the inbox absorbs.
	if err := c.cl.CommitRecords(cctx, done...); err != nil {
		c.log.Warn("commit offsets failed", "err", err)
	}
}

// process handles one record to completion: applied, skipped or
// dead-lettered. It returns false only if ctx ended first.
func (c *Consumer) process(ctx context.Context, r *kgo.Record) bool {
	meta, msg, err := events.Decode(r)
	if err != nil {
		return c.deadLetter(ctx, r, "malformed", err)
	}
	h, ok := c.handlers[meta.Type]
	if !ok {
		handledTotal.WithLabelValues(c.group, meta.Type, OutcomeUnhandled).Inc()
		return true
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     c.opts.InitialBackoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.opts.MaxBackoff,
	}
	for attempt := 1; ; attempt++ {
		dup, err := c.apply(ctx, h, meta, msg)
		if err == nil {
			outcome := OutcomeHandled
			if dup {
				outcome = OutcomeDuplicate
			}
			handledTotal.WithLabelValues(c.group, meta.Type, outcome).Inc()
			return true
		}
		handledTotal.WithLabelValues(c.group, meta.Type, OutcomeFailed).Inc()
		if attempt >= c.opts.MaxAttempts {
			return c.deadLetter(ctx, r, "failed", fmt.Errorf("%d attempts, last: %w", attempt, err))
		}
		wait := bo.NextBackOff()
		c.log.Warn("handler failed, retrying", "type", meta.Type, "event_id", meta.ID,
			"attempt", attempt, "retry_in", wait, "err", err)
		if !pause.For(ctx, wait) {
			return false
		}
	}
}

// apply runs h in a transaction that first claims the event id in the
// inbox; a claim that already exists means a redelivery, and h is skipped.
func (c *Consumer) apply(ctx context.Context, h handler, meta events.Meta, msg proto.Message) (dup bool, err error) {
	// Shutdown waits for the attempt rather than abandoning it halfway.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.HandlerTimeout)
	defer cancel()
	hctx = events.WithTraceparent(hctx, meta.Traceparent)
	err = c.db.RunInTx(hctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw(`INSERT INTO inbox (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			c.group, meta.ID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("claim event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			dup = true
			return err
		}
		return callSafely(ctx, h, tx, meta, msg)
	})
	return dup, err
}

// callSafely turns a handler panic into an error, so it is retried and
// dead-lettered like any failure instead of crashing the service.
func callSafely(ctx context.Context, h handler, tx bun.Tx, meta events.Meta, msg proto.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h(ctx, tx, meta, msg)
}

// deadLetter publishes r to the group's dead-letter topic with the reason
// attached. It keeps trying while Kafka is unavailable: skipping a record
// without a copy would lose it. It returns false only if ctx ended first.
func (c *Consumer) deadLetter(ctx context.Context, r *kgo.Record, reason string, cause error) bool {
	dl := &kgo.Record{
		Topic: events.DLQTopic(c.group),
		Key:   r.Key,
		Value: r.Value,
		Headers: append(slices.Clone(r.Headers),
			kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(cause.Error())},
			kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderDLQPartition, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
			kgo.RecordHeader{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
			kgo.RecordHeader{Key: HeaderDLQConsumer, Value: []byte(c.group)},
		),
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     c.opts.InitialBackoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         c.opts.MaxBackoff,
	}
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := c.cl.ProduceSync(pctx, dl).FirstErr()
		cancel()
		if err == nil {
			deadLetteredTotal.WithLabelValues(c.group, reason).Inc()
			c.log.Warn("record dead-lettered", "dlq", dl.Topic, "topic", r.Topic,
				"partition", r.Partition, "offset", r.Offset, "err", cause)
			return true
		}
		c.log.Error("dead-letter publish failed, retrying", "dlq", dl.Topic, "err", err)
		if !pause.For(ctx, bo.NextBackOff()) {
			return false
		}
	}
}
