package httpserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/httpserver"
)

const short = 300 * time.Millisecond

// startShort serves h with every timeout short and returns its host:port.
func startShort(t *testing.T, h http.Handler) string {
	t.Helper()
	base, stop := start(t, &httpserver.Server{Name: "test", Handler: h, Timeouts: httpserver.Timeouts{ShutdownTimeout: time.Second,
		ReadHeaderTimeout: short, ReadTimeout: short, WriteTimeout: short, IdleTimeout: short}})
	t.Cleanup(func() { _ = stop() })
	return strings.TrimPrefix(base, "http://")
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer reads what the server sends until it closes the
// connection, and fails the test if it has not within a while (many times
// the timeouts: the server would otherwise keep it forever).
func closedByServer(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open; it sent %q", b)
	}
	return string(b)
}

var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body not read", http.StatusBadRequest)
		return
	}
	_, _ = w.Write(b) // the client checks what arrived
})

// A client that sends its body a byte at a time is cut off after the read
// timeout, however slowly it keeps sending.
func TestSlowBodyIsCut(t *testing.T) {
	addr := startShort(t, echoBody)
	conn := dial(t, addr)
	if _, err := fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for range 1000 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // 20 s for the whole body
		}
	}()
	closedByServer(t, conn)
	conn.Close()
	<-sent
}

// Headers sent a byte at a time are cut off too.
func TestSlowHeadersAreCut(t *testing.T) {
	addr := startShort(t, echoBody)
	conn := dial(t, addr)
	go func() {
		for _, c := range []byte("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + strings.Repeat("x", 500)) {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	closedByServer(t, conn)
}

// A keep-alive connection that sends no next request is closed after the
// idle timeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	addr := startShort(t, echoBody)
	conn := dial(t, addr)
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %v %v", resp, err)
	}
	if rest := closedByServer(t, conn); strings.Contains(rest, "HTTP/1.1") {
		t.Errorf("sent more than one response: %q", rest)
	}
}

// Requests that take less than the timeouts are served as always, several
// on one keep-alive connection.
func TestNormalRequestsAreServed(t *testing.T) {
	addr := startShort(t, echoBody)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := range 5 {
		resp, err := client.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(fmt.Sprint("hello ", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprint("hello ", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		time.Sleep(short / 3)
	}
}

// A hijacked connection (a websocket) is the handler's: the server's
// deadlines, set for the upgrade request, no longer cut it. net/http (Go
// 1.26) clears them itself when a handler hijacks, but http.Hijacker lets a
// server hand the connection over with them set: the middleware clears
// them for every component either way ("leaving deadlines").
func TestHijackedConnectionIsNotCut(t *testing.T) {
	echo := hijackingEcho(t)
	servers := map[string]func(*testing.T, http.Handler) string{
		"httpserver.Server": startShort,
		"leaving deadlines": startLeavingDeadlines,
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			conn := dial(t, start(t, echo))
			if _, err := fmt.Fprintf(conn, "GET /echo HTTP/1.1\r\nHost: test\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			// 1.5 s of echoes, five times the timeouts, with pauses longer
			// than the idle timeout.
			for i := range 5 {
				time.Sleep(short + 10*time.Millisecond)
				if _, err := fmt.Fprintf(conn, "ping %d\n", i); err != nil {
					t.Fatalf("echo %d: %v", i, err)
				}
				if line, err := r.ReadString('\n'); err != nil || line != fmt.Sprintf("ping %d\n", i) {
					t.Fatalf("echo %d after %v: %q %v", i, time.Duration(i+1)*short, line, err)
				}
			}
		})
	}
}

// hijackingEcho upgrades to a line echo on the hijacked connection.
func hijackingEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		// A write that fails ends the echo; the client sees it go quiet.
		if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil || rw.Flush() != nil {
			return
		}
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := rw.WriteString(line); err != nil || rw.Flush() != nil {
				return
			}
		}
	})
}

// startLeavingDeadlines serves h behind the middleware, with every timeout
// short, from a server that hands hijacked connections over with their
// deadlines set; it returns the host:port.
func startLeavingDeadlines(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: leavesDeadlines(httpserver.Middleware("test", slog.New(slog.DiscardHandler), h)),
		ReadHeaderTimeout: short, ReadTimeout: short, WriteTimeout: short, IdleTimeout: short}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

// leavesDeadlines serves h as a server that hands hijacked connections
// over with a read and write deadline still set.
func leavesDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(deadlineHijacker{w}, r)
	})
}

type deadlineHijacker struct{ http.ResponseWriter }

func (h deadlineHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(short))
	}
	return conn, rw, err
}
