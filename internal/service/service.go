// Package service runs one subgraph service: its database, its Kafka
// client and topics, its outbox relay, its event consumer and its GraphQL
// API, started in that order and stopped in reverse. Each of the six
// services is a Spec that declares what it publishes and consumes and
// builds its parts; all of them share this one runtime, which owns the
// plumbing.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/prune"
)

// Partitions is the partition count of the topics a service creates.
const Partitions = 3

// Spec describes one service to the runtime. It declares; the runtime
// wires.
type Spec struct {
	Name       string   // target name, e.g. "product"; also its consumer group
	Migrations []string // migration sets applied after the platform set
	// Publishes and Consumes are the event types (typed nils will do) the
	// service writes to its outbox and handles. The outbox refuses any
	// other type, the runtime refuses to start a service whose handlers
	// differ from Consumes, and the event-flow map is made of both.
	Publishes []proto.Message
	Consumes  []proto.Message
	// Build makes the service over its dependencies and registers a handler
	// for every type in Consumes with d.Handlers.
	Build func(ctx context.Context, d Deps) (*Parts, error)
}

// Deps are what the runtime gives a service to build itself with.
type Deps struct {
	DB     *bun.DB
	Auth   auth.Config
	Logger *slog.Logger
	// Handlers take the service's event handlers, one per type in
	// Spec.Consumes; the runtime consumes the types' topics with them.
	Handlers *inbox.Handlers
	// Feed returns a feed of the service's own events for its
	// subscriptions; the runtime runs it.
	Feed func() *live.Feed
}

// Parts are what a service gives the runtime.
type Parts struct {
	Schema graphql.ExecutableSchema // served at /graphql
	// Access guards the schema's root fields; every mutation and
	// subscription needs a rule.
	Access  auth.Rules
	Workers []Worker                // background loops of the service's own
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

// Env is what a service is built over: its migrated database, the Kafka
// cluster and a producer client of it, and the settings.
type Env struct {
	DB       *bun.DB
	DSN      string // DB's own URL, for the relay's notifications
	Cluster  kafka.Cluster
	Producer *kgo.Client
	Config   Config
	Auth     auth.Config
	JWKSURL  string // where to fetch the keys that verify access tokens
	Logger   *slog.Logger
}

// Built is a service made over its Env: its API and the workers that run
// it, its topics created.
type Built struct {
	Parts    *Parts
	API      http.Handler // /graphql behind token verification, and the Routes
	Handlers *inbox.Handlers
	// Workers are the consumer, the live feeds, the service's own workers,
	// the outbox relay and the pruner.
	Workers []Worker
}

// Build builds spec over env: it creates the topics the service publishes
// to and consumes, and the consumer of its handlers.
func Build(ctx context.Context, spec Spec, env Env) (*Built, error) {
	var feeds []Worker
	handlers := &inbox.Handlers{}
	parts, err := spec.Build(ctx, Deps{
		DB: env.DB, Auth: env.Auth, Logger: env.Logger, Handlers: handlers,
		Feed: func() *live.Feed {
			f := live.NewFeed(env.Cluster, events.Topic(spec.Name), env.Logger)
			feeds = append(feeds, f)
			return f
		},
	})
	if err != nil {
		return nil, err
	}
	consumed, err := consumedTopics(spec, handlers)
	if err != nil {
		return nil, err
	}
	// Consumed topics are created too, with the project's partition count:
	// the service may start before their producers, and a consumer would
	// otherwise have them auto-created with the broker's default.
	if err := kafka.EnsureTopics(ctx, env.Producer, Partitions, append([]string{events.Topic(spec.Name)}, consumed...)...); err != nil {
		return nil, err
	}
	workers := feeds
	if len(consumed) > 0 {
		consumer, err := inbox.New(env.DB, env.Cluster, spec.Name, consumed, handlers, inbox.Options{Logger: env.Logger})
		if err != nil {
			return nil, err
		}
		workers = append(workers, consumer)
	}
	relay, err := outbox.NewRelay(env.DB, env.DSN, env.Producer, outbox.Options{Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	pruner := &prune.Pruner{DB: env.DB, Interval: env.Config.PruneInterval, Logger: env.Logger, Rules: append([]prune.Rule{
		// An event redelivered after this long is not recognised as a
		// duplicate: keep entries at least as long as the topics keep
		// events (the handlers are idempotent besides).
		{Table: "inbox", Where: "handled_at < ?0", Keep: env.Config.InboxRetention},
	}, parts.Prune...)}
	workers = append(append(workers, parts.Workers...), relay, pruner)

	// Zero trust: the service verifies tokens itself, whatever the router did.
	verifier := parts.Verifier
	if verifier == nil {
		verifier = auth.NewVerifier(env.JWKSURL, env.Auth.Issuer, env.Auth.Audience)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", auth.Middleware(verifier, env.Logger,
		gqlserver.New(parts.Schema, gqlserver.Options{Name: spec.Name, Logger: env.Logger, Access: parts.Access, Limits: env.Config.Limits})))
	for pattern, h := range parts.Routes {
		mux.Handle(pattern, h)
	}
	return &Built{Parts: parts, API: mux, Handlers: handlers, Workers: workers}, nil
}

// consumedTopics checks the registered handlers against spec.Consumes and
// returns the topics of their types.
func consumedTopics(spec Spec, h *inbox.Handlers) ([]string, error) {
	declared := events.Names(spec.Consumes)
	slices.Sort(declared)
	if registered := h.Types(); !slices.Equal(declared, registered) {
		return nil, fmt.Errorf("handlers for %v, but the Spec declares it consumes %v", registered, declared)
	}
	return events.Topics(spec.Consumes)
}

// Options configure Run.
type Options struct {
	Config   Config
	Endpoint Endpoint
	HTTP     httpserver.Timeouts
	Auth     auth.Config
	Cluster  kafka.Cluster
	JWKSURL  string // where to fetch the keys that verify access tokens
	Logger   *slog.Logger
	OnListen func(addr net.Addr) // called once the API listens
}

// Run runs the service until ctx is cancelled, then shuts it down
// gracefully: stop accepting and drain requests, stop the workers (each
// commits what it finished), stop the relay, flush the producer. Errors
// are not prefixed with the service's name: the caller knows it.
func Run(ctx context.Context, spec Spec, o Options) error {
	log := o.Logger.With("service", spec.Name)
	db, err := postgres.Open(ctx, postgres.Options{
		ServerURL: o.Config.DatabaseURL, Database: o.Endpoint.Database, Migrations: spec.Migrations, Logger: log,
		MaxConns: o.Config.DBMaxConns,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	dsn, err := postgres.WithDatabase(o.Config.DatabaseURL, o.Endpoint.Database)
	if err != nil {
		return err
	}
	cl, err := o.Cluster.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	built, err := Build(ctx, spec, Env{
		DB: db, DSN: dsn, Cluster: o.Cluster, Producer: cl, Config: o.Config, Auth: o.Auth, JWKSURL: o.JWKSURL, Logger: log,
	})
	if err != nil {
		return err
	}
	srv := &httpserver.Server{
		Name: spec.Name, Addr: o.Endpoint.Addr, Handler: built.API, Timeouts: o.HTTP, Logger: log,
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
	errc := make(chan error, len(built.Workers))
	for _, w := range built.Workers {
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
		// The worker's failure is what Run returns; a shutdown that went
		// wrong on top of it is only logged.
		if err := <-served; err != nil {
			log.Warn("stop serving", "err", err)
		}
	case runErr = <-served:
	}
	stopWork()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), o.HTTP.ShutdownTimeout)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		log.Warn("flush producer", "err", err)
	}
	log.Info("stopped")
	return runErr
}
