package httpserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/httpserver"
)

func start(t *testing.T, s *httpserver.Server) (base string, stop func() error) {
	t.Helper()
	s.Addr, s.Logger = "127.0.0.1:0", slog.New(slog.DiscardHandler)
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop = func() error { cancel(); return <-done }
	return "http://" + addr.String(), stop
}

// shutdown stops a server that start serves and fails the test if it did
// not shut down cleanly.
func shutdown(t *testing.T, stop func() error) {
	t.Helper()
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Shutdown lets a request in flight finish, then refuses new ones.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	base, stop := start(t, &httpserver.Server{Name: "test", Timeouts: httpserver.Timeouts{ShutdownTimeout: 5 * time.Second},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "finished") // the client checks what arrived
		})})
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if body := <-got; body != "finished" {
		t.Fatalf("in-flight request got %q", body)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}

func TestReadinessReportsEachDependency(t *testing.T) {
	base, stop := start(t, &httpserver.Server{Name: "test", Ready: map[string]httpserver.Check{
		"postgres": func(context.Context) error { return nil },
		"kafka":    func(context.Context) error { return errors.New("no brokers") },
	}})
	defer shutdown(t, stop)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"kafka":"unavailable"`) || !strings.Contains(string(b), `"postgres":"ok"`) {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "no brokers") {
		t.Error("readyz leaks error details")
	}
}

// Requests get an id and a trace context: the client's when well formed,
// fresh ones otherwise, visible to the handler and echoed in the response.
func TestRequestIDAndTraceparent(t *testing.T) {
	type seen struct{ id, tp string }
	got := make(chan seen, 1)
	base, stop := start(t, &httpserver.Server{Name: "test", Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- seen{httpserver.RequestID(r.Context()), events.TraceparentFrom(r.Context())}
	})})
	defer shutdown(t, stop)

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	req.Header.Set("Traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s.id != "abc-123" || s.tp != tp || resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("client ids not kept: %+v", s)
	}

	req, _ = http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Header.Set("X-Request-Id", "bad id with spaces")
	req.Header.Set("Traceparent", "garbage")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-got
	if s.id == "" || strings.Contains(s.id, " ") || len(s.tp) != len(tp) || resp.Header.Get("X-Request-Id") != s.id {
		t.Errorf("malformed ids not replaced: %+v", s)
	}
}

func TestChildTraceparentStaysInTheTrace(t *testing.T) {
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	valid := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
	child := httpserver.ChildTraceparent(parent)
	if child[:36] != parent[:36] || child[52:] != parent[52:] || child[36:52] == parent[36:52] || !valid.MatchString(child) {
		t.Fatalf("child of %s: %s, want the same trace and flags with a new parent id", parent, child)
	}
	if fresh := httpserver.ChildTraceparent("garbage"); !valid.MatchString(fresh) {
		t.Fatalf("child of an invalid traceparent: %q", fresh)
	}
}
