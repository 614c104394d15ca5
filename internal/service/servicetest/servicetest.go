// Package servicetest starts one service in a test as the runtime starts
// it, over a fresh database and an embedded Kafka broker of its own, so that
// the test can drive it with events and watch what it publishes.
package servicetest

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/internal/testrun"
)

// Service is a running service.
type Service struct {
	DB      *pgtest.Database
	Cluster kafka.Cluster
	Kafka   *kgo.Client // a producer client of Cluster
	Parts   *service.Parts
	Logger  *slog.Logger // writes to the test's output, shown on failure
}

// Start creates spec's own topic and the topics it consumes, builds spec
// over its migrated database, checks its access rules as gqlserver does
// (panicking on a missing one), and runs its workers and its outbox relay
// until the test ends.
func Start(t testing.TB, spec service.Spec, consumes ...string) *Service {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	db := pgtest.New(t, spec.Migrations...)
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, service.Partitions, slices.Concat(consumes, []string{events.Topic(spec.Name)})...); err != nil {
		t.Fatal(err)
	}
	parts, err := spec.Build(context.Background(), service.Deps{DB: db.DB, Kafka: cl, Cluster: cluster, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	gqlserver.New(parts.Schema, gqlserver.Options{Logger: log, Access: parts.Access})
	relay, err := outbox.NewRelay(db.DB, db.URL, cl, outbox.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range append(slices.Clone(parts.Workers), relay) {
		testrun.Background(t, w.Run)
	}
	return &Service{DB: db, Cluster: cluster, Kafka: cl, Parts: parts, Logger: log}
}

// Produce publishes recs to the service's broker and waits until it has
// them.
func (s *Service) Produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	kafkatest.Produce(t, s.Kafka, recs...)
}
