// Package system is Online Mart's composition root: the table of targets
// (the six subgraph services and the router), the configuration that
// embeds each component's own, and the loop that runs the selected
// targets in one process. All targets in one process is the embedded
// default; one target per process is the production shape. Both use the
// same code paths (HTTP between router and subgraphs, Kafka between
// services).
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/router"
)

// Listening reports the address a component listens on.
type Listening func(component string, addr net.Addr)

// process is what the targets of one process share.
type process struct {
	cfg     *Config
	log     *slog.Logger
	cluster kafka.Cluster
	// listening are the base URLs of the targets started so far.
	listening map[string]string
}

// Run runs cfg.Targets, each once the one before listens, until ctx is
// cancelled or one fails; then it stops them in reverse order.
func Run(ctx context.Context, cfg *Config, log *slog.Logger, onListen Listening) error {
	if onListen == nil {
		onListen = func(string, net.Addr) {}
	}
	p := &process{cfg: cfg, log: log, listening: map[string]string{}}
	var selected []Target
	for _, t := range Targets {
		if slices.Contains(cfg.Targets, t.Name) {
			selected = append(selected, t)
		}
	}

	cluster, err := kafka.Secure(cfg.Kafka.Brokers, cfg.Kafka.Security)
	if err != nil {
		return err
	}
	p.cluster = cluster
	if len(cfg.Kafka.Brokers) == 0 && slices.ContainsFunc(selected, func(t Target) bool { return t.Service != nil }) {
		broker, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: cfg.Kafka.EmbeddedAddr, DataDir: cfg.Kafka.EmbeddedDataDir, Logger: log})
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer broker.Close()
		p.cluster = broker.Cluster()
		log.Info("embedded kafka broker started", "addr", p.cluster.Brokers[0])
		if addr, err := net.ResolveTCPAddr("tcp", p.cluster.Brokers[0]); err == nil {
			onListen("kafka", addr)
		}
	}

	type started struct {
		stop context.CancelFunc
		done chan error
	}
	var running []started
	exited := make(chan string, len(selected))
	stopAll := func() error {
		var errs []error
		for _, r := range slices.Backward(running) {
			r.stop()
			if err := <-r.done; err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, t := range selected {
		// Each target has its own context, so they stop one by one.
		tctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done, listening := make(chan error, 1), make(chan net.Addr, 1)
		go func() {
			err := p.run(tctx, t, func(addr net.Addr) { listening <- addr })
			if err != nil {
				err = fmt.Errorf("%s: %w", t.Name, err)
			}
			done <- err
			exited <- t.Name
		}()
		running = append(running, started{stop: stop, done: done})
		select {
		case addr := <-listening:
			p.listening[t.Name] = "http://" + addr.String()
			onListen(t.Name, addr)
		case <-exited:
			return stopAll()
		case <-ctx.Done():
			return stopAll()
		}
	}
	select {
	case <-ctx.Done():
	case <-exited:
	}
	return stopAll()
}

// run runs target t.
func (p *process) run(ctx context.Context, t Target, onListen func(net.Addr)) error {
	if t.Service == nil {
		return p.runRouter(ctx, onListen)
	}
	return service.Run(ctx, t.Service(p.cfg), service.Options{
		Config: p.cfg.Runtime, Endpoint: *p.cfg.Services[t.Name], HTTP: p.cfg.HTTP, Auth: p.cfg.Auth,
		Cluster: p.cluster, JWKSURL: p.jwksURL(), Logger: p.log, OnListen: onListen,
	})
}

// routingURLs are where this process reaches the subgraphs: where they
// listen when they run here, else the configured overrides (the rest come
// from the supergraph config).
func (p *process) routingURLs() map[string]string {
	urls := map[string]string{}
	for name, url := range p.cfg.Router.RoutingURLs {
		urls[name] = url
	}
	for name, base := range p.listening {
		if name != Router {
			urls[name] = base + "/graphql"
		}
	}
	return urls
}

// jwksURL is where this process's verifiers fetch the token keys: as
// configured, else from the user service, where this process reaches it.
func (p *process) jwksURL() string {
	if p.cfg.Auth.JWKSURL != "" {
		return p.cfg.Auth.JWKSURL
	}
	base := "http://" + p.cfg.Services["user"].Addr
	if url, ok := p.routingURLs()["user"]; ok {
		base = strings.TrimSuffix(url, "/graphql")
	}
	return base + "/.well-known/jwks.json"
}

func (p *process) runRouter(ctx context.Context, onListen func(net.Addr)) (err error) {
	subgraphs, err := router.LoadSupergraphConfig(p.cfg.Router.SupergraphConfig, p.routingURLs())
	if err != nil {
		return err
	}
	jwks := p.jwksURL()
	rt, err := router.New(ctx, router.Options{
		Config: p.cfg.Router, Subgraphs: subgraphs, SubgraphIdleTimeout: p.cfg.HTTP.IdleTimeout,
		Logger:   p.log.With("component", Router),
		Verifier: auth.NewVerifier(jwks, p.cfg.Auth.Issuer, p.cfg.Auth.Audience), JWKSURL: jwks,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	mux := http.NewServeMux()
	mux.Handle("/graphql", rt)
	mux.Handle("GET /.well-known/jwks.json", rt)
	mux.Handle("/", rt) // the playground at GET / (404 when MART_PLAYGROUND is off) and JSON 404s
	srv := &httpserver.Server{Name: Router, Addr: p.cfg.Router.Addr, Handler: mux, Timeouts: p.cfg.HTTP, Logger: p.log}
	return srv.Run(ctx, onListen)
}
