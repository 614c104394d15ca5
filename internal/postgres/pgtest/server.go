package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StopMode is how Stop shuts the server down (pg_ctl stop -m).
type StopMode string

const (
	// Fast disconnects clients and shuts down cleanly, with a checkpoint.
	Fast StopMode = "fast"
	// Immediate kills the server like a crash: no shutdown checkpoint, so
	// the next Start runs crash recovery.
	Immediate StopMode = "immediate"
)

// ServerOptions tune a private server.
type ServerOptions struct {
	MaxConnections int // default 300: a whole system under test holds many pools
}

// Server is a private PostgreSQL cluster owned by one test, so the test may
// stop, crash and restart it without disturbing the shared server.
type Server struct {
	bin     string // directory holding initdb and pg_ctl
	dir     string // owns data/, the log and the unix socket
	data    string
	log     string
	port    int
	maxConn int
	asUser  bool // run the tools as the postgres OS user (we are root)

	mu sync.Mutex // serialises Start and Stop
}

// StartServer initialises and starts a private cluster on a free loopback
// port; it is crashed and removed when the test ends.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	bin, err := serverBinDir()
	if err != nil {
		t.Fatalf("pgtest: %v; install the PostgreSQL server (e.g. apt-get install postgresql) or put its pg_config on PATH", err)
	}
	s := &Server{bin: bin, maxConn: o.MaxConnections, asUser: os.Geteuid() == 0}
	if s.maxConn <= 0 {
		s.maxConn = 300
	}
	if s.asUser {
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("pgtest: running as root needs runuser (util-linux) to run initdb as postgres: %v", err)
		}
	}

	// Not t.TempDir: its parent is private to root, and the postgres user
	// must reach the directory.
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.data = filepath.Join(s.dir, "data")
	s.log = filepath.Join(s.dir, "server.log")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx, Immediate); err != nil {
			t.Errorf("pgtest: stop private server: %v", err)
		}
		if t.Failed() {
			t.Logf("pgtest: private server log:\n%s", s.logTail(40))
		}
		if err := os.RemoveAll(s.dir); err != nil {
			t.Errorf("pgtest: remove private server: %v", err)
		}
	})
	if s.asUser {
		if err := chownToPostgres(s.dir); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := s.run(ctx, "initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	// The free port is only free until someone else takes it; retry on a
	// lost race rather than fail the test.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		err = s.Start(ctx)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(s.logTail(20), "could not bind") {
			t.Fatalf("pgtest: start private server: %v", err)
		}
	}
}

// URL is the connection URL of the server's postgres database.
func (s *Server) URL() string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: s.Addr(), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

// Addr is the server's TCP address.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// LogPath is the server's log file, kept across restarts for post-mortems.
func (s *Server) LogPath() string { return s.log }

// Restart stops the server with mode and starts it again on the same port.
func (s *Server) Restart(ctx context.Context, mode StopMode) error {
	if err := s.Stop(ctx, mode); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Stop shuts the server down with mode; stopping a stopped server is a no-op.
func (s *Server) Stop(ctx context.Context, mode StopMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-D", s.data, "-m", string(mode)); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// Start starts the server and returns once it accepts connections, which
// after an Immediate stop includes crash recovery.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// pg_ctl hands -o to a shell, so the paths must not need quoting;
	// MkdirTemp's names do not. fsync is off for speed: a stopped or crashed
	// server still leaves its writes in the OS page cache. Commits stay
	// synchronous so acknowledged commits survive Immediate.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=%d -c fsync=off",
		s.port, s.dir, s.maxConn)
	if out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.data, "-l", s.log, "-o", opts); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\nlog %s:\n%s", err, out, s.log, s.logTail(20))
	}
	// pg_ctl -w trusts postmaster.pid; a real connection proves clients can
	// get in over TCP.
	for {
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server on %s not accepting connections: %w", s.Addr(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run runs one of the server tools, as the postgres user when we are root
// because initdb and postgres refuse to run as root.
func (s *Server) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	name := filepath.Join(s.bin, tool)
	if s.asUser {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	// The tools resolve the working directory, which postgres may not be
	// allowed to read (the package directory under /root, say).
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// logTail returns the last n lines of the server log.
func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// serverBinDir finds the directory holding initdb and pg_ctl: pg_config's
// answer, else the newest Debian-style /usr/lib/postgresql/N/bin.
func serverBinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	// pg_config may come from a client-only package, so the server may
	// still live in the versioned directories.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	candidates = append(candidates, dirs...)
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found (looked in %v)", candidates)
}

// versionOf reads N from /usr/lib/postgresql/N/bin ("9.6" sorts below "10").
func versionOf(bindir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bindir)), 64)
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres OS user to own the cluster: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
