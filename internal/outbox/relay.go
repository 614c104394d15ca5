package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/pause"
)

// DefaultLockID is the advisory lock key that elects the active relay.
// Advisory locks are per database, so each service's relay has its own.
const DefaultLockID int64 = 0x6d617274_6f757462 // "martoutb"

// notifyChannel is the channel migration 00002's trigger notifies on insert.
const notifyChannel = "outbox"

var (
	publishedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_outbox_published_total",
		Help: "Outbox events published to Kafka and acknowledged by the broker.",
	}, []string{"topic"})
	relayActive = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mart_outbox_relay_active",
		Help: "1 while this process is the active outbox relay of the database.",
	}, []string{"database"})
	oldestPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mart_outbox_oldest_pending_seconds",
		Help: "Age of the oldest event waiting in the outbox when the relay last looked; 0 when empty.",
	}, []string{"database"})
	relayErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_outbox_relay_errors_total",
		Help: "Outbox relay failures (Postgres or Kafka), each followed by a retry.",
	}, []string{"database"})
)

// Options tune a Relay; zero values take the defaults.
type Options struct {
	BatchSize    int           // events per produce round trip; default 100
	PollInterval time.Duration // check the table this often without a notification; default 1s
	LockRetry    time.Duration // how often a standby relay tries to take over; default 1s
	LockID       int64         // advisory lock key; default DefaultLockID
	Logger       *slog.Logger  // default slog.Default()
}

// Relay publishes the outbox of one database to Kafka. Run any number of
// them (one per service instance): an advisory lock lets one publish while
// the others stand by, so events leave in order.
type Relay struct {
	db       *bun.DB
	connCfg  *pgx.ConnConfig
	database string
	cl       *kgo.Client
	opts     Options
	log      *slog.Logger

	// afterPublish, when set, runs after the broker acknowledged a batch of
	// n events and before it is deleted; an error abandons the batch (tests
	// simulate a crash there).
	afterPublish func(n int) error
}

// NewRelay returns a relay for the outbox in db. dsn names the same
// database: the relay holds its own connection there for the lock and for
// LISTEN, outside db's pool. Build cl with kafka.NewClient: its idempotent
// producer keeps each key's events in order through retries, and its
// delivery timeout turns a broker outage into an error the relay retries.
func NewRelay(db *bun.DB, dsn string, cl *kgo.Client, opts Options) (*Relay, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	// Have the server probe our connection, so if this relay's host
	// vanishes without closing it, the lock is freed in about 20s rather
	// than after the kernel's default two hours.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "5"
	cfg.RuntimeParams["tcp_keepalives_count"] = "2"
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.LockRetry <= 0 {
		opts.LockRetry = time.Second
	}
	if opts.LockID == 0 {
		opts.LockID = DefaultLockID
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Relay{
		db:       db,
		connCfg:  cfg,
		database: cfg.Database,
		cl:       cl,
		opts:     opts,
		log:      opts.Logger.With("component", "outbox-relay", "database", cfg.Database),
	}, nil
}

// Run publishes until ctx is cancelled, then returns nil. Postgres and
// Kafka failures are logged and retried with backoff, never returned.
func (r *Relay) Run(ctx context.Context) error {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     200 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         10 * time.Second,
	}
	for {
		err := r.session(ctx, bo)
		if ctx.Err() != nil {
			return nil
		}
		relayErrors.WithLabelValues(r.database).Inc()
		wait := bo.NextBackOff()
		r.log.Warn("outbox relay lost its connection, reconnecting", "err", err, "retry_in", wait)
		if !pause.For(ctx, wait) {
			return nil
		}
	}
}

// session connects, waits to become the active relay and publishes until
// an error or cancellation. Closing the connection releases the lock.
func (r *Relay) session(ctx context.Context, bo *backoff.ExponentialBackOff) error {
	conn, err := pgx.ConnectConfig(ctx, r.connCfg.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()

	// A session-level lock lives exactly as long as this connection, so a
	// relay that dies (or loses its connection) frees it for a standby.
	for waiting := false; ; waiting = true {
		var locked bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, r.opts.LockID).Scan(&locked); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		if locked {
			break
		}
		if !waiting {
			r.log.Info("outbox relay standing by: another relay is active")
		}
		bo.Reset() // standing by is healthy, not a failure
		if !pause.For(ctx, r.opts.LockRetry) {
			return ctx.Err()
		}
	}
	active := relayActive.WithLabelValues(r.database)
	active.Inc()
	defer active.Dec()
	r.log.Info("outbox relay active")

	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		if err := r.drain(ctx); err != nil {
			// Keep the lock through Kafka or query failures: giving it up
			// would only hand the same failure to a standby.
			relayErrors.WithLabelValues(r.database).Inc()
			wait := bo.NextBackOff()
			r.log.Warn("outbox publish failed, retrying", "err", err, "retry_in", wait)
			if !pause.For(ctx, wait) {
				return ctx.Err()
			}
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("lock connection: %w", err)
			}
			continue
		}
		bo.Reset()
		// Sleep until an insert commits, or PollInterval as a safety net
		// (e.g. a notification lost while we were reconnecting).
		waitCtx, cancel := context.WithTimeout(ctx, r.opts.PollInterval)
		_, err := conn.WaitForNotification(waitCtx)
		timedOut := waitCtx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !timedOut {
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// drain publishes batches until the outbox is empty.
func (r *Relay) drain(ctx context.Context) error {
	for {
		n, err := r.publishBatch(ctx)
		if err != nil || n < r.opts.BatchSize {
			return err
		}
	}
}

// publishBatch publishes the oldest pending events and deletes them once
// acknowledged. It returns how many it published.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	var rows []row
	if err := r.db.NewSelect().Model(&rows).Order("seq").Limit(int64(r.opts.BatchSize)).Scan(ctx); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		oldestPending.WithLabelValues(r.database).Set(0)
		return 0, nil
	}
	oldestPending.WithLabelValues(r.database).Set(time.Since(rows[0].CreatedAt).Seconds())
	recs := make([]*kgo.Record, len(rows))
	for i, row := range rows {
		recs[i] = events.RawRecord(events.Meta{
			ID:          row.EventID,
			Type:        row.Type,
			Source:      row.Source,
			Time:        row.CreatedAt,
			Topic:       row.Topic,
			Key:         row.Key,
			Traceparent: row.Traceparent,
		}, row.Payload)
	}
	// ProduceSync waits for every ack. Records of one key share a partition
	// and the idempotent producer keeps them in order there, retries
	// included. A failure leaves all rows for the next attempt: some may go
	// out twice, and consumers deduplicate by ce_id.
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(len(rows)); err != nil {
			return 0, err
		}
	}
	seqs := make([]int64, len(rows))
	for i, row := range rows {
		seqs[i] = row.Seq
		publishedTotal.WithLabelValues(row.Topic).Inc()
	}
	// Published is published: delete even if we are shutting down, or the
	// next relay sends the batch again.
	delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := r.db.NewDelete().Model((*row)(nil)).Where("seq IN (?)", bun.List(seqs)).Exec(delCtx); err != nil {
		return 0, fmt.Errorf("delete published: %w", err)
	}
	return len(rows), nil
}
