// Package app runs the components selected by target in one process: the
// embedded Kafka broker when no cluster is configured, the subgraph
// services, then the router. It stops them in reverse order. All targets in
// one process is the embedded default; one target per process is the
// production shape. Both use the same code paths (HTTP between router and
// subgraphs, Kafka between services).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/config"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/router"
	"github.com/onlinemart/mart/subgraphs/inventory"
	"github.com/onlinemart/mart/subgraphs/notification"
	"github.com/onlinemart/mart/subgraphs/order"
	"github.com/onlinemart/mart/subgraphs/payment"
	"github.com/onlinemart/mart/subgraphs/product"
	"github.com/onlinemart/mart/subgraphs/user"
)

// Services are the subgraph services this build contains, by target name.
var Services = map[string]service.Spec{
	user.Spec.Name:         user.Spec,
	product.Spec.Name:      product.Spec,
	order.Spec.Name:        order.Spec,
	inventory.Spec.Name:    inventory.Spec,
	payment.Spec.Name:      payment.Spec,
	notification.Spec.Name: notification.Spec,
}

// Listening reports the address a component listens on.
type Listening func(component string, addr net.Addr)

// Run runs cfg.Targets until ctx is cancelled or a component fails.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, onListen Listening) error {
	if onListen == nil {
		onListen = func(string, net.Addr) {}
	}
	var specs []service.Spec
	for _, name := range config.ServiceNames() { // start order
		if !slices.Contains(cfg.Targets, name) {
			continue
		}
		spec, ok := Services[name]
		if !ok {
			log.Debug("target not built yet, skipping", "target", name)
			continue
		}
		specs = append(specs, spec)
	}

	cluster, err := kafka.Secure(cfg.KafkaBrokers, cfg.KafkaSecurity)
	if err != nil {
		return err
	}
	if len(specs) > 0 && len(cfg.KafkaBrokers) == 0 {
		broker, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: cfg.KafkaEmbeddedAddr, DataDir: cfg.KafkaEmbeddedDataDir, Logger: log})
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer broker.Close()
		cluster = broker.Cluster()
		log.Info("embedded kafka broker started", "addr", cluster.Brokers[0])
		if addr, err := net.ResolveTCPAddr("tcp", cluster.Brokers[0]); err == nil {
			onListen("kafka", addr)
		}
	}

	// Services run under their own context so the router stops first.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	failed := make(chan error, len(specs)+1)
	var wg sync.WaitGroup
	routing := map[string]string{}
	jwks := cfg.Auth.JWKSURL
	if jwks == "" {
		jwks = "http://" + cfg.Services["user"].Addr + "/.well-known/jwks.json"
	}
	// Start in dependency order, each once the previous one listens: the
	// user service first, so the others verify tokens with its real address.
	for _, spec := range specs {
		listening := make(chan net.Addr, 1)
		wg.Go(func() {
			err := service.Run(svcCtx, spec, service.Options{
				Config: cfg, Cluster: cluster, JWKSURL: jwks, Logger: log,
				OnListen: func(addr net.Addr) { listening <- addr },
			})
			if err != nil {
				failed <- fmt.Errorf("%s: %w", spec.Name, err)
			}
		})
		select {
		case addr := <-listening:
			routing[spec.Name] = "http://" + addr.String() + "/graphql"
			if spec.Name == "user" && cfg.Auth.JWKSURL == "" {
				jwks = "http://" + addr.String() + "/.well-known/jwks.json"
			}
			onListen(spec.Name, addr)
		case err := <-failed:
			stopServices()
			wg.Wait()
			return err
		case <-ctx.Done():
			stopServices()
			wg.Wait()
			return nil
		}
	}

	var routerErr error
	if slices.Contains(cfg.Targets, "router") {
		// In one process the router reaches the services where they really
		// listen, which matters when ports are chosen by the OS.
		overrides := map[string]string{}
		for name, url := range routing {
			overrides[name] = url
		}
		for name, url := range cfg.Router.RoutingURLs {
			overrides[name] = url
		}
		routerErr = runRouter(ctx, cfg, overrides, jwks, log, onListen, failed)
	} else {
		select {
		case <-ctx.Done():
		case routerErr = <-failed:
		}
	}
	stopServices()
	wg.Wait()
	close(failed)
	errs := []error{routerErr}
	for err := range failed {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runRouter serves the router until ctx is cancelled or a service fails.
func runRouter(ctx context.Context, cfg *config.Config, routing map[string]string, jwks string, log *slog.Logger, onListen Listening, failed <-chan error) error {
	subgraphs, err := router.LoadSupergraphConfig(cfg.Router.SupergraphConfig, routing)
	if err != nil {
		return err
	}
	if cfg.Auth.JWKSURL == "" {
		// The keys live with the user service, wherever the router finds it.
		for _, sg := range subgraphs {
			if sg.Name == "user" {
				jwks = strings.TrimSuffix(sg.RoutingURL, "/graphql") + "/.well-known/jwks.json"
			}
		}
	}
	rt, err := router.New(ctx, router.Options{
		Subgraphs: subgraphs, MaxBodyBytes: cfg.Router.MaxBodyBytes, MaxDepth: cfg.Router.MaxDepth,
		MaxAliases: cfg.Router.MaxAliases, MaxRootFields: cfg.Router.MaxRootFields,
		MaxTokens: cfg.Router.MaxTokens, MaxFields: cfg.Router.MaxFields, MaxDuplicates: cfg.Router.MaxDuplicates,
		WSMaxOperations: cfg.Router.WSMaxOperations, WSMaxConns: cfg.Router.WSMaxConns, TrustedProxies: cfg.Router.TrustedProxies,
		RequestTimeout: cfg.Router.RequestTimeout, SubgraphConns: cfg.Router.SubgraphConns, SubgraphIdleTimeout: cfg.HTTP.IdleTimeout, Logger: log.With("component", "router"),
		Verifier: auth.NewVerifier(jwks, cfg.Auth.Issuer, cfg.Auth.Audience), JWKSURL: jwks,
		Playground: cfg.Router.Playground, Introspection: cfg.Router.Introspection,
	})
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	defer rt.Close()
	mux := http.NewServeMux()
	mux.Handle("/graphql", rt)
	mux.Handle("GET /.well-known/jwks.json", rt)
	mux.Handle("/", rt) // the playground at GET / (404 when MART_PLAYGROUND is off) and JSON 404s
	srv := &httpserver.Server{Name: "router", Addr: cfg.Router.Addr, Handler: mux, ShutdownTimeout: cfg.ShutdownTimeout, Logger: log, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout, WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	onListen("router", addr)
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx) }()
	select {
	case err = <-served:
		return err
	case err = <-failed:
		stop()
		<-served
		return err
	case <-ctx.Done():
		stop()
		return <-served
	}
}
