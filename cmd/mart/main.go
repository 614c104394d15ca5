// Command mart is Online Mart in one binary: the router and the
// subgraph services, selected by target (like Grafana Mimir and Loki).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/router"
	"github.com/onlinemart/mart/system"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return usage(stdout)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, stderr)
	case "compose":
		return compose(ctx, args, stdout, stderr)
	case "admin":
		return adminCommand(ctx, args, os.Stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args)
	case "events":
		return eventFlow(stdout)
	case "version":
		_, err := fmt.Fprintln(stdout, "mart", versionString())
		return err
	}
	_ = usage(stderr) // the unknown command is the error to report
	return fmt.Errorf("unknown command %q", cmd)
}

// usage writes the commands and the environment variables they read.
func usage(w io.Writer) error {
	if _, err := fmt.Fprintf(w, `mart — the Online Mart API: a GraphQL federation router and its subgraph services.

Usage:
  mart serve [--targets all|%s]
        Run the chosen components in this process (default: all, the embedded
        default: in-process Kafka broker unless KAFKA_BROKERS is set).
  mart migrate [service...]
        Create each service's database if missing and apply its migrations
        (default: every service).
  mart compose [--config supergraph.yaml] [--out schema/supergraph.graphql]
        Compose the subgraph schemas into the supergraph and write it; prints
        every composition error and exits non-zero when composition fails.
  mart admin create --email EMAIL [--name NAME]
        Make sure an ADMIN with this email exists: create it (password read
        from the terminal, or one line of stdin) or promote the existing account.
  mart events
        Print the event-flow map: which service publishes each event type and
        which consume it (docs/event-flow.md is this output).
  mart healthcheck URL
        GET URL (e.g. http://127.0.0.1:4002/readyz) and exit 0 on 200, 1
        otherwise: a container health check for images without a shell.
  mart version
        Print the version.

Environment (defaults in brackets):
`, strings.Join(system.TargetNames(), ",")); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, v := range system.Vars() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		if _, err := fmt.Fprintf(tw, "  %s\t%s [%s]\n", v.Name, v.Help, def); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return "dev"
}

func newLogger(cfg *system.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets := fs.String("targets", "", "components to run (env MART_TARGETS, default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := system.Load()
	if err != nil {
		return err
	}
	if *targets != "" {
		if cfg.Targets, err = system.ParseTargets(*targets); err != nil {
			return fmt.Errorf("--targets: %w", err)
		}
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	log.Info("starting mart", "version", versionString(), "targets", strings.Join(cfg.Targets, ","))
	if cfg.PprofAddr != "" {
		addr, err := servePprof(ctx, cfg.PprofAddr, cfg.HTTP)
		if err != nil {
			return fmt.Errorf("MART_PPROF_ADDR: %w", err)
		}
		announce(stdout, "Profiler: http://%s/debug/pprof/\n", addr)
	}
	return system.Run(ctx, cfg, log, func(component string, addr net.Addr) {
		if component == "kafka" {
			announce(stdout, "Embedded Kafka broker on %s (kcat -b %s -L)\n", addr, addr)
		}
		if component == "router" {
			announce(stdout, "\nOnline Mart is up.\n")
			if cfg.Router.Playground {
				announce(stdout, "  Playground: http://%s/\n", addr)
			}
			announce(stdout, "  GraphQL:    http://%[1]s/graphql  (POST, GET, websocket)\n  Health:     http://%[1]s/readyz\n  Metrics:    http://%[1]s/metrics\n\n", addr)
		}
	})
}

// announce prints a line of serve's banner. The banner is for whoever
// watches the terminal: the servers keep serving when nobody reads it, so
// a failed write is dropped.
func announce(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// servePprof serves Go's profiler on addr until ctx ends, so that a running
// process can be measured (the benchmarks profile the router this way).
// It is off unless asked for: profiles reveal internals and cost CPU.
// It has the timeouts of every server (MART_HTTP_…): a profile or trace
// takes its seconds parameter to answer, so ask for less than
// MART_HTTP_WRITE_TIMEOUT (45s by default; net/http/pprof says so when not).
func servePprof(ctx context.Context, addr string, t httpserver.Timeouts) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: t.ReadHeaderTimeout, ReadTimeout: t.ReadTimeout,
		WriteTimeout: t.WriteTimeout, IdleTimeout: t.IdleTimeout}
	go func() {
		// Close (at ctx's end) makes Serve return ErrServerClosed; any other
		// error stops the profiler alone, so it is only logged.
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("profiler stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() }) // it closes the listener, whose error says only that it was closed
	return l.Addr(), nil
}

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := system.Load()
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	names := args
	if len(names) == 0 {
		names = system.ServiceNames()
	}
	for _, name := range names {
		spec, ok := system.Spec(cfg, name)
		if !ok {
			return fmt.Errorf("unknown service %q (have %s)", name, strings.Join(system.ServiceNames(), ", "))
		}
		db, err := postgres.Open(ctx, postgres.Options{
			ServerURL: cfg.Runtime.DatabaseURL, Database: cfg.Services[name].Database, Migrations: spec.Migrations, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		db.Close()
		log.Info("database up to date", "service", name, "database", cfg.Services[name].Database)
	}
	return nil
}

func compose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "supergraph.yaml", "the supergraph config")
	out := fs.String("out", "schema/supergraph.graphql", "where to write the supergraph; - for stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	subgraphs, err := router.LoadSupergraphConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	sdl, err := router.Compose(ctx, subgraphs)
	if err != nil {
		var ce *router.CompositionError
		if errors.As(err, &ce) {
			_, _ = fmt.Fprintln(stderr, ce.Error()) // stderr is where a failed write would be reported
			return errors.New("composition failed")
		}
		return err
	}
	if *out == "-" {
		_, err = io.WriteString(stdout, sdl)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(sdl), 0o644); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(stderr, "wrote", *out) // the supergraph is written: this only says so
	return nil
}

// eventFlow prints the event-flow map, refusing one with a gap.
func eventFlow(stdout io.Writer) error {
	flows := system.EventFlow(new(system.Config))
	if err := system.CheckEventFlow(flows); err != nil {
		return err
	}
	return system.WriteEventFlow(stdout, flows)
}

// healthcheck is for container health checks in images without curl.
func healthcheck(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: mart healthcheck URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}
