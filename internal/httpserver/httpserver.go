// Package httpserver serves a component's HTTP API with the endpoints and
// middleware every component shares: /healthz, /readyz, /metrics, request
// ids, trace context, access logs, metrics, and graceful shutdown.
package httpserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/onlinemart/mart/internal/events"
)

// Check reports whether one dependency is reachable.
type Check func(ctx context.Context) error

// Server is one component's HTTP server.
type Server struct {
	Name    string // component name, used in logs and metrics
	Addr    string
	Handler http.Handler // the component's API, mounted at /
	Ready   map[string]Check
	Logger  *slog.Logger
	Timeouts

	mu       sync.Mutex
	listener net.Listener
}

// Defaults of the timeouts, as in config (MART_HTTP_…).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 45 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// Listen binds the address; Serve then serves on it. Splitting the two lets
// callers learn the real port of ":0" before serving.
func (s *Server) Listen() (net.Addr, error) {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.Addr, err)
	}
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	return l.Addr(), nil
}

// Serve serves until ctx is cancelled, then stops accepting, drains
// in-flight requests for up to ShutdownTimeout, and returns.
func (s *Server) Serve(ctx context.Context) error {
	if s.listener == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = 20 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.Handler())
	if s.Handler != nil {
		mux.Handle("/", s.Handler)
	}
	srv := &http.Server{
		Handler:           Middleware(s.Name, s.Logger, mux),
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(s.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(s.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(s.IdleTimeout, DefaultIdleTimeout),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.listener) }()
	s.Logger.Info("listening", "component", s.Name, "addr", s.listener.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running, or connections that were opened but never
		// sent one (net/http waits 5s for those): close them.
		s.Logger.Warn("shutdown: closing connections still open", "component", s.Name, "after", s.ShutdownTimeout)
		_ = srv.Close()
	}
	// Serve returns http.ErrServerClosed once Shutdown or Close is called;
	// anything else is a failure that raced with ctx's cancellation.
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", s.Name, err)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for name, check := range s.Ready {
		if err := check(ctx); err != nil {
			s.Logger.Warn("not ready", "component", s.Name, "dependency", name, "err", err)
			status[name], code = "unavailable", http.StatusServiceUnavailable
		} else {
			status[name] = "ok"
		}
	}
	writeJSON(w, code, status)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mart_http_requests_total", Help: "HTTP requests by component, method and status code.",
	}, []string{"component", "method", "code"})
	duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mart_http_request_duration_seconds", Help: "HTTP request latency by component.",
		Buckets: prometheus.DefBuckets,
	}, []string{"component"})
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestIDHeader carries the request id between client, router and subgraphs.
const RequestIDHeader = "X-Request-Id"

var (
	validRequestID   = regexp.MustCompile(`^[A-Za-z0-9._\-]{1,128}$`)
	validTraceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Middleware assigns request ids and trace context, records metrics and
// writes an access log line. Incoming ids are kept when well formed so one
// id follows a request from Kong through the router to every subgraph.
func Middleware(component string, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = randomHex(16)
			r.Header.Set(RequestIDHeader, id)
		}
		tp := r.Header.Get("Traceparent")
		if !validTraceparent.MatchString(tp) {
			tp = "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
			r.Header.Set("Traceparent", tp)
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = events.WithTraceparent(ctx, tp) // carried into outbox events
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		elapsed := time.Since(start)
		requests.WithLabelValues(component, r.Method, strconv.Itoa(rec.code)).Inc()
		duration.WithLabelValues(component).Observe(elapsed.Seconds())
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics" {
			logger.Debug("http request", "component", component, "method", r.Method, "path", r.URL.Path,
				"status", rec.code, "duration_ms", elapsed.Milliseconds(), "request_id", id, "traceparent", tp)
		}
	})
}

// ChildTraceparent returns the trace context of a new span in tp's trace
// (same trace id and flags, a fresh parent id), or a new trace when tp is
// not a valid traceparent.
func ChildTraceparent(tp string) string {
	if !validTraceparent.MatchString(tp) {
		return "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
	}
	return tp[:36] + randomHex(8) + tp[52:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers the status code; it forwards Flush and Hijack so
// streaming responses and websocket upgrades keep working.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over for websocket upgrades. The server's
// read and write deadlines were set for the upgrade request: they are
// cleared, so the connection lives as long as its new protocol wants.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	r.code = http.StatusSwitchingProtocols
	conn, rw, err := h.Hijack()
	if err == nil {
		_ = conn.SetDeadline(time.Time{})
	}
	return conn, rw, err
}
