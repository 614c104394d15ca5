// Package servicetest starts one service in a test as the runtime starts
// it, over a fresh database and an embedded Kafka broker of its own, so that
// the test can drive it with events and watch what it publishes.
package servicetest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/testkit/testrun"
)

// Service is a running service.
type Service struct {
	DB      *pgtest.Database
	Cluster kafka.Cluster
	Kafka   *kgo.Client // a producer client of Cluster
	*service.Built
	URL    string       // where the API is served, as the runtime serves it
	Logger *slog.Logger // writes to the test's output, shown on failure
}

// Auth is the token claims a started service expects.
var Auth = auth.Config{Issuer: "mart", Audience: "mart-api"}

// Start builds spec as the runtime does, over a fresh migrated database
// and a broker of its own (so its topics are created and its handlers
// checked against its declarations), checks its access rules as gqlserver
// does (panicking on a missing one), and runs its workers until the test
// ends.
func Start(t testing.TB, spec service.Spec) *Service {
	t.Helper()
	return StartOn(t, spec, pgtest.New(t, spec.Migrations...))
}

// StartOn is Start over db, a database with spec's migrations, for tests
// of what a service finds when it starts again.
func StartOn(t testing.TB, spec service.Spec, db *pgtest.Database) *Service {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	built, err := service.Build(ctx, spec, service.Env{
		DB: db.DB, DSN: db.URL, Cluster: cluster, Producer: cl, Logger: log, Auth: Auth,
		Config: service.Config{PruneInterval: time.Hour, InboxRetention: 24 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range built.Workers {
		testrun.Background(t, w.Run)
	}
	srv := httptest.NewServer(built.API)
	t.Cleanup(srv.Close)
	return &Service{DB: db, Cluster: cluster, Kafka: cl, Built: built, URL: srv.URL, Logger: log}
}

// Produce publishes recs to the service's broker and waits until it has
// them.
func (s *Service) Produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	kafkatest.Produce(t, s.Kafka, recs...)
}
