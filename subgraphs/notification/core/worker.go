package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres"
)

var (
	sentTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_notification_sent_total",
		Help: "Notifications delivered, by channel.",
	}, []string{"channel"})
	failedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_notification_failed_total",
		Help: "Notifications given up on after their last attempt (FAILED), by channel.",
	}, []string{"channel"})
	retriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_notification_retries_total",
		Help: "Failed sends that will be tried again, by channel.",
	}, []string{"channel"})
	queueAge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "mart_notification_queue_age_seconds",
		Help: "How long the oldest due QUEUED notification had waited when a worker last looked; 0 when none was due.",
	})
)

// maxErrorLen bounds the last error kept with a notification.
const maxErrorLen = 1000

// Run delivers due notifications until ctx is cancelled, then lets the
// sends in flight finish and record their results, and returns nil.
//
// Each send runs between two short statements and holds no transaction
// (nor row lock) open across the network: the claim counts the attempt and
// leases the row by pushing next_attempt_at past the send timeout; the
// result then records SENT, a retry with backoff, or FAILED. A worker that
// dies mid-send leaves the lease to expire and the row is tried again
// (delivery is at least once; a repeat keeps its Message-ID). Replicas
// share the queue through FOR UPDATE SKIP LOCKED; the notifications table
// is their job queue (internal/jobs).
func (n *Notifications) Run(ctx context.Context) error {
	return jobs.Run(ctx, n.db, "notifications", n.opts.Jobs, n.ProcessNext)
}

// ProcessNext claims the notification due first, sends it and records the
// outcome. It reports whether there was one.
func (n *Notifications) ProcessNext(ctx context.Context) (bool, error) {
	note, err := n.claim(ctx)
	if err != nil || note == nil {
		return false, err
	}
	// Shutdown waits for the send rather than abandoning it midway.
	return true, n.deliver(context.WithoutCancel(ctx), note)
}

// claimed is a notification just claimed, with when it had become due.
type claimed struct {
	Notification `bun:",extend"`
	DueAt        time.Time `bun:"due_at"`
}

// claim takes the notification due first, counts the attempt and leases
// it, in one statement.
func (n *Notifications) claim(ctx context.Context) (*Notification, error) {
	at := postgres.Now()
	c := new(claimed)
	err := n.db.NewRaw(`WITH due AS (
			SELECT id, next_attempt_at FROM notifications
			WHERE status = 'QUEUED' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE notifications AS n SET attempts = n.attempts + 1, next_attempt_at = ?, updated_at = ?
		FROM due WHERE n.id = due.id
		RETURNING n.*, due.next_attempt_at AS due_at`, at, at.Add(2*n.opts.SendTimeout), at).Scan(ctx, c)
	if errors.Is(err, sql.ErrNoRows) {
		queueAge.Set(0)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim notification: %w", err)
	}
	queueAge.Set(at.Sub(c.DueAt).Seconds())
	return &c.Notification, nil
}

// deliver sends a claimed notification and records the outcome, unless
// the lease ran out meanwhile and another worker took it over.
func (n *Notifications) deliver(ctx context.Context, note *Notification) error {
	sendErr := fmt.Errorf("no sender for channel %s", note.Channel)
	if s := n.senders[note.Channel]; s != nil {
		sctx, cancel := context.WithTimeout(ctx, n.opts.SendTimeout)
		sendErr = s.Send(sctx, Message{
			ID: note.ID, To: note.Recipient, Subject: note.Subject, Text: note.BodyText, HTML: note.BodyHTML,
		})
		cancel()
	}
	at := postgres.Now()
	q := n.db.NewUpdate().Model((*Notification)(nil)).
		Where("id = ? AND status = ? AND attempts = ?", note.ID, Queued, note.Attempts).
		Set("updated_at = ?", at)
	ch := string(note.Channel)
	log := n.log.With("notification_id", note.ID, "channel", ch, "template", note.Template, "attempt", note.Attempts)
	switch {
	case sendErr == nil:
		q.Set("status = ?, sent_at = ?, next_attempt_at = NULL", Sent, at)
		sentTotal.WithLabelValues(ch).Inc()
	case note.Attempts >= n.opts.MaxAttempts || IsPermanent(sendErr):
		q.Set("status = ?, next_attempt_at = NULL, last_error = ?", Failed, truncate(sendErr.Error()))
		failedTotal.WithLabelValues(ch).Inc()
		log.Error("notification failed for good", "err", sendErr)
	default:
		wait := n.backoff(note.Attempts)
		q.Set("next_attempt_at = ?, last_error = ?", at.Add(wait), truncate(sendErr.Error()))
		retriesTotal.WithLabelValues(ch).Inc()
		log.Warn("sending a notification failed, retrying", "retry_in", wait, "err", sendErr)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("record delivery of %s: %w", note.ID, err)
	}
	return nil
}

// backoff is the wait after the attempt-th failed send: doubling from
// InitialBackoff up to MaxBackoff, with jitter so that notifications
// failing together do not retry together.
func (n *Notifications) backoff(attempt int) time.Duration {
	return jobs.Backoff(attempt, n.opts.InitialBackoff, n.opts.MaxBackoff)
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorLen], "") // a cut rune would be refused by Postgres
}
