// Package service runs one subgraph service: its database, its Kafka
// client, its outbox relay, its event consumers and its GraphQL API, started
// in that order and stopped in reverse. Each of the six services is a Spec;
// all of them share this one runtime.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/config"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/prune"
)

// Partitions is the partition count of the topics a service creates.
const Partitions = 3

// Spec describes one service to the runtime.
type Spec struct {
	Name       string   // target name, e.g. "product"
	Migrations []string // migration sets applied after the platform set
	// Build wires the service over its dependencies.
	Build func(ctx context.Context, d Deps) (*Parts, error)
}

// Deps are what the runtime gives a service.
type Deps struct {
	Config  *config.Config
	DB      *bun.DB
	Kafka   *kgo.Client   // shared producer client
	Cluster kafka.Cluster // for consumers, which need their own group clients
	Logger  *slog.Logger
}

// Parts are what a service gives the runtime.
type Parts struct {
	Schema graphql.ExecutableSchema // served at /graphql
	// Access guards the schema's root fields; every mutation and
	// subscription needs a rule.
	Access  auth.Rules
	Workers []Worker                // event consumers and background loops
	Routes  map[string]http.Handler // more HTTP routes, e.g. "GET /.well-known/jwks.json"
	// Verifier checks access tokens; nil means fetching the keys from the
	// user service. The user service sets its own: it holds the keys.
	Verifier *auth.Verifier
	// Prune are the service's own retention rules, applied with the
	// platform's (the inbox) by one pruner.
	Prune []prune.Rule
}

// Worker is a long-running part of a service, such as an event consumer.
// Run blocks until ctx is cancelled, finishes its current unit of work and
// returns.
type Worker interface {
	Run(ctx context.Context) error
}

// Options configure Run.
type Options struct {
	Config   *config.Config
	Cluster  kafka.Cluster
	JWKSURL  string // where to fetch the keys that verify access tokens
	Logger   *slog.Logger
	OnListen func(addr net.Addr) // called once the API listens
}

// Run runs the service until ctx is cancelled, then shuts it down
// gracefully: stop accepting and drain requests, stop the workers (each
// commits what it finished), stop the relay, flush the producer.
func Run(ctx context.Context, spec Spec, o Options) error {
	log := o.Logger.With("service", spec.Name)
	sc, ok := o.Config.Services[spec.Name]
	if !ok {
		return fmt.Errorf("service %s: not configured", spec.Name)
	}
	db, err := postgres.Open(ctx, postgres.Options{
		ServerURL: o.Config.DatabaseURL, Database: sc.Database, Migrations: spec.Migrations, Logger: log,
		MaxConns: o.Config.DBMaxConns,
	})
	if err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	defer db.Close()

	cl, err := o.Cluster.NewClient()
	if err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, Partitions, events.Topic(spec.Name)); err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}

	parts, err := spec.Build(ctx, Deps{Config: o.Config, DB: db, Kafka: cl, Cluster: o.Cluster, Logger: log})
	if err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	dsn, err := postgres.WithDatabase(o.Config.DatabaseURL, sc.Database)
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(db, dsn, cl, outbox.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}

	// Zero trust: the service verifies tokens itself, whatever the router did.
	verifier := parts.Verifier
	if verifier == nil {
		verifier = auth.NewVerifier(o.JWKSURL, o.Config.Auth.Issuer, o.Config.Auth.Audience)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", auth.Middleware(verifier, log,
		gqlserver.New(parts.Schema, gqlserver.Options{Name: spec.Name, Logger: log, Access: parts.Access,
			MaxBodyBytes: o.Config.Subgraph.MaxBodyBytes, MaxTokens: o.Config.Subgraph.MaxTokens})))
	for pattern, h := range parts.Routes {
		mux.Handle(pattern, h)
	}
	srv := &httpserver.Server{
		Name: spec.Name, Addr: sc.Addr, Handler: mux, ShutdownTimeout: o.Config.ShutdownTimeout, Logger: log,
		ReadHeaderTimeout: o.Config.HTTP.ReadHeaderTimeout, ReadTimeout: o.Config.HTTP.ReadTimeout,
		WriteTimeout: o.Config.HTTP.WriteTimeout, IdleTimeout: o.Config.HTTP.IdleTimeout,
		Ready: map[string]httpserver.Check{
			"postgres": func(ctx context.Context) error { return db.PingContext(ctx) },
			"kafka":    func(ctx context.Context) error { return kafka.Ping(ctx, cl) },
		},
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}

	// Workers and the relay stop only after the API drained: a request in
	// flight may still write events.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	errc := make(chan error, len(parts.Workers)+3)
	pruner := &prune.Pruner{DB: db, Interval: o.Config.PruneInterval, Logger: log, Rules: append([]prune.Rule{
		// An event redelivered after this long is not recognised as a
		// duplicate: keep entries at least as long as the topics keep
		// events (the handlers are idempotent besides).
		{Table: "inbox", Where: "handled_at < ?0", Keep: o.Config.InboxRetention},
	}, parts.Prune...)}
	for _, w := range append(parts.Workers, relay, pruner) {
		wg.Go(func() {
			if err := w.Run(workCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		})
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx) }()
	if o.OnListen != nil {
		o.OnListen(addr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		stopServe()
		runErr = <-served
	case runErr = <-errc:
		log.Error("worker failed, shutting down", "err", runErr)
		stopServe()
		<-served
	case runErr = <-served:
	}
	stopWork()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), o.Config.ShutdownTimeout)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		log.Warn("flush producer", "err", err)
	}
	log.Info("stopped")
	return runErr
}
