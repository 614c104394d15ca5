// Package clustertest runs Online Mart as a production-shaped cluster for
// tests that need real processes: every service and router as separate
// `mart serve --targets …` processes (several replicas each), a real load
// balancer (haproxy) in front of each group of replicas, one Kafka broker
// and one Postgres server. Tests can kill, stop and restart any process and
// read its metrics; each process's output is kept in a log file for
// post-mortems.
//
// It is slow to start (it builds the binary and runs a dozen processes), so
// the suites that use it (scale/, the fault-injection suite) are opt-in.
//
// Layout of a cluster started with Replicas=2, Routers=2:
//
//	client ─► haproxy :router ─► router-1, router-2
//	            haproxy :user ─► user-1, user-2   (MART_JWKS_URL points here)
//	            haproxy :order ─► order-1, order-2  (routers' routing URLs point here)
//	            …
//
// With one process per group (Replicas 1, Routers 1) there is no balancer:
// each group's URL is its process. Options.PrivatePostgres gives the
// cluster its own Postgres server that tests may restart, and
// Options.PersistentBroker a broker that keeps its data on disk across
// RestartBroker; both serve the fault-injection suite (chaos/).
//
// Requirements: Postgres at DATABASE_URL (as for `make test`) with room
// for about 12 connections per service process under load (max_connections
// 100 is tight for 12 service processes; see docs/reliability.md) unless
// PrivatePostgres, the haproxy binary (Debian package haproxy) on PATH when
// there are replicas, and the Go toolchain.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// The admin every cluster starts with (the user service creates it).
const (
	AdminEmail    = systemtest.AdminEmail
	AdminPassword = systemtest.AdminPassword
)

// RouterGroup is the name of the group of routers.
const RouterGroup = "router"

// Options shape a cluster; zero values take the defaults.
type Options struct {
	// Replicas is the number of processes of each service; default 2.
	Replicas int
	// Routers is the number of router processes; default 2, negative
	// for none.
	Routers int
	// Partitions of each service's event topic, created before any
	// service starts; default service.Partitions.
	Partitions int32
	// Services limits the services started (default all); the routers
	// still route to every balancer, so leave it empty with Routers > 0.
	Services []string
	// Env is set on every process on top of the cluster's own settings.
	Env map[string]string
	// StartTimeout bounds the start of the whole cluster; default 3 minutes.
	StartTimeout time.Duration
	// PrivatePostgres runs a Postgres server of the cluster's own
	// (pgtest.StartServer) instead of using DATABASE_URL's, so a test can
	// restart it without disturbing other tests.
	PrivatePostgres bool
	// PersistentBroker keeps the embedded broker's data in the artifacts
	// directory, so RestartBroker loses nothing.
	PersistentBroker bool
	// Brokers, when set, are an external Kafka cluster used instead of
	// the embedded broker (which RestartBroker then cannot restart).
	Brokers []string
}

// Cluster is a running cluster. It stops when the test ends: processes
// first, then the balancer, the broker, and the databases are dropped.
type Cluster struct {
	// Groups are the replicas of each service and the routers, by name
	// ("user", …, "router").
	Groups map[string]*Group
	// Brokers are the Kafka bootstrap addresses (the embedded broker runs
	// in the test process).
	Brokers []string
	// Postgres is the cluster's own server with PrivatePostgres, else nil.
	Postgres *pgtest.Server
	// Databases are the database URLs of each service.
	Databases map[string]string
	// Artifacts is the directory holding every process's log and the
	// balancer's configuration; kept after the test.
	Artifacts string

	t        testing.TB
	bin      string
	brokerMu sync.Mutex
	broker   *kafka.Embedded // nil with external brokers
	brokerOf kafka.EmbeddedOptions
	balancer *Balancer // nil with one process per group
	baseEnv  []string

	adminOnce sync.Once
	admin     *kadm.Client
	adminErr  error
}

// Group is the replicas of one service (or the routers) and the balancer
// frontend in front of them.
type Group struct {
	Name  string
	URL   string // the balancer's /graphql for this group
	LB    string // the balancer's host:port for this group
	Procs []*Process
}

// Start builds mart, starts the broker, the balancer and every process,
// and returns once all of them are ready and the balancer sees them up. It
// fails the test when something is missing or does not start.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	o = o.withDefaults()
	balanced := o.Replicas > 1 || o.Routers > 1
	var haproxy string
	if balanced {
		var err error
		if haproxy, err = exec.LookPath("haproxy"); err != nil {
			t.Fatalf("clustertest: haproxy not found on PATH: install the Debian package haproxy (apt-get install haproxy)")
		}
	}
	c := &Cluster{t: t, Groups: map[string]*Group{}, Databases: map[string]string{}}
	c.Artifacts = artifactsDir(t)
	c.bin = Binary(t)

	serverURL := pgtest.ServerURL()
	if o.PrivatePostgres {
		c.Postgres = pgtest.StartServer(t, pgtest.ServerOptions{})
		serverURL = c.Postgres.URL()
	}
	c.startBroker(o)
	if err := c.createTopics(o.Partitions); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	env := c.createDatabases(o, serverURL)
	c.placeGroups(o, balanced)
	c.setEnv(env, o.Env)

	if balanced {
		var err error
		if c.balancer, err = startBalancer(haproxy, c.Artifacts, c.Groups); err != nil {
			t.Fatalf("clustertest: %v", err)
		}
		t.Cleanup(c.balancer.stop)
	}

	// Every process stops before the broker and the databases go.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, g := range c.Groups {
			for _, p := range g.Procs {
				wg.Go(func() { _ = p.Stop() })
			}
		}
		wg.Wait()
		t.Logf("clustertest: process logs in %s", c.Artifacts)
	})

	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	c.startProcesses(ctx, o.Services)
	for _, g := range c.Groups {
		if err := c.WaitBalanced(ctx, g.Name); err != nil {
			t.Fatalf("clustertest: %v", err)
		}
	}
	return c
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	if o.Routers < 0 {
		o.Routers = 0
	} else if o.Routers == 0 {
		o.Routers = 2
	}
	if o.Partitions <= 0 {
		o.Partitions = service.Partitions
	}
	if len(o.Services) == 0 {
		o.Services = system.ServiceNames()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Minute
	}
	return o
}

// startBroker uses o's external brokers, or starts the embedded broker
// until the test ends (persistent with o.PersistentBroker).
func (c *Cluster) startBroker(o Options) {
	c.t.Helper()
	if len(o.Brokers) > 0 {
		c.Brokers = o.Brokers
		return
	}
	c.brokerOf = kafka.EmbeddedOptions{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	if o.PersistentBroker {
		c.brokerOf.Addr = FreeAddr(c.t) // a restarted broker listens where clients look
		c.brokerOf.DataDir = filepath.Join(c.Artifacts, "kafka")
	}
	broker, err := kafka.StartEmbedded(c.brokerOf)
	if err != nil {
		c.t.Fatalf("clustertest: kafka: %v", err)
	}
	c.t.Cleanup(c.closeBroker)
	c.broker, c.Brokers = broker, broker.Addrs()
}

// createDatabases names a fresh database of every service on serverURL,
// to be dropped after the processes stopped (cleanups run last-in
// first-out, and the processes register theirs later), and returns the
// environment of every process: the databases, the broker, the
// supergraph and the first admin.
func (c *Cluster) createDatabases(o Options, serverURL string) map[string]string {
	prefix := pgtest.NewName()
	env := map[string]string{
		"DATABASE_URL":           serverURL,
		"KAFKA_BROKERS":          strings.Join(c.Brokers, ","),
		"MART_LOG_LEVEL":         "warn",
		"MART_SHUTDOWN_TIMEOUT":  "5s",
		"MART_SUPERGRAPH_CONFIG": filepath.Join(systemtest.RepoRoot(), "supergraph.yaml"),
		"MART_ADMIN_EMAIL":       AdminEmail,
		"MART_ADMIN_PASSWORD":    AdminPassword,
	}
	for _, name := range system.ServiceNames() {
		db := prefix + "_" + name
		env["MART_"+strings.ToUpper(name)+"_DATABASE"] = db
		c.Databases[name], _ = postgres.WithDatabase(serverURL, db)
		if !o.PrivatePostgres { // a private server goes as a whole
			c.t.Cleanup(func() { pgtest.Drop(c.t, db) })
		}
	}
	return env
}

// placeGroups chooses every address now, so the balancer's configuration
// and the routing URLs are known before anything starts: each process's,
// and each group's balancer frontend (the first process's address when
// there is no balancer).
func (c *Cluster) placeGroups(o Options, balanced bool) {
	groups := append(append([]string{}, o.Services...), RouterGroup)
	for _, g := range groups {
		n := o.Replicas
		if g == RouterGroup {
			n = o.Routers
		}
		if n == 0 {
			continue
		}
		grp := &Group{Name: g}
		for i := 1; i <= n; i++ {
			addr := FreeAddr(c.t)
			grp.Procs = append(grp.Procs, &Process{
				Name: fmt.Sprintf("%s-%d", g, i), Target: g, Addr: addr,
				URL: "http://" + addr + "/graphql", c: c,
			})
		}
		grp.LB = grp.Procs[0].Addr
		if balanced {
			grp.LB = FreeAddr(c.t)
		}
		grp.URL = "http://" + grp.LB + "/graphql"
		c.Groups[g] = grp
	}
}

// setEnv makes env, with the groups' routing and key URLs and extra on
// top, the base environment of every process.
func (c *Cluster) setEnv(env, extra map[string]string) {
	if u := c.Groups["user"]; u != nil {
		env["MART_JWKS_URL"] = "http://" + u.LB + "/.well-known/jwks.json"
	}
	for name, g := range c.Groups {
		if name != RouterGroup {
			env["MART_"+strings.ToUpper(name)+"_ROUTING_URL"] = g.URL
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range env {
		c.baseEnv = append(c.baseEnv, k+"="+v)
	}
}

// startProcesses starts the processes in waves and waits until each wave
// is ready: the user service first (its keys sign every token and the
// others fetch them through its balancer), then the other services
// together, then the routers.
func (c *Cluster) startProcesses(ctx context.Context, services []string) {
	c.t.Helper()
	waves := [][]string{{"user"}, nil, {RouterGroup}}
	for _, g := range services {
		if g != "user" {
			waves[1] = append(waves[1], g)
		}
	}
	for _, wave := range waves {
		var procs []*Process
		for _, g := range wave {
			if grp := c.Groups[g]; grp != nil {
				procs = append(procs, grp.Procs...)
			}
		}
		for _, p := range procs {
			if err := p.Start(); err != nil {
				c.t.Fatalf("clustertest: %v", err)
			}
		}
		for _, p := range procs {
			if err := p.WaitReady(ctx); err != nil {
				c.t.Fatalf("clustertest: %v (log: %s)", err, p.LogPath())
			}
		}
	}
}

// Group returns the named group, failing the test when there is none.
func (c *Cluster) Group(name string) *Group {
	c.t.Helper()
	g := c.Groups[name]
	if g == nil {
		c.t.Fatalf("clustertest: no group %q", name)
	}
	return g
}

// Processes returns every process of the cluster, routers last.
func (c *Cluster) Processes() []*Process {
	var out []*Process
	for _, name := range append(system.ServiceNames(), RouterGroup) {
		if g := c.Groups[name]; g != nil {
			out = append(out, g.Procs...)
		}
	}
	return out
}

// WaitBalanced waits until the balancer forwards to every running replica
// of the group: each answers through it at least once.
func (c *Cluster) WaitBalanced(ctx context.Context, group string) error {
	g := c.Groups[group]
	if g == nil {
		return fmt.Errorf("no group %q", group)
	}
	if c.balancer == nil {
		return nil
	}
	for {
		up, err := c.balancer.serversUp(group)
		running := 0
		for _, p := range g.Procs {
			if p.Running() {
				running++
			}
		}
		if err == nil && up >= running {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("balancer of %s: not every replica up: %w", group, err)
			}
			return fmt.Errorf("balancer of %s: not every replica up: %d of %d", group, up, running)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ServersUp returns how many replicas of group the balancer considers up.
func (c *Cluster) ServersUp(group string) (int, error) {
	if c.balancer == nil {
		return 0, errors.New("no balancer: one process per group")
	}
	return c.balancer.serversUp(group)
}

// Broker returns the embedded broker now running, nil with external
// brokers or while it is stopped. A restart replaces it: faults installed
// on it (Fake) do not survive RestartBroker.
func (c *Cluster) Broker() *kafka.Embedded {
	c.brokerMu.Lock()
	defer c.brokerMu.Unlock()
	return c.broker
}

// RestartBroker stops the embedded broker cleanly, leaves it down for
// downtime, and starts it again on the same address. With
// PersistentBroker it comes back with its topics, records and committed
// offsets; without, it comes back empty.
func (c *Cluster) RestartBroker(downtime time.Duration) error {
	c.brokerMu.Lock()
	defer c.brokerMu.Unlock()
	if c.broker == nil {
		return errors.New("clustertest: the brokers are external or stopped")
	}
	c.broker.Close()
	c.broker = nil
	time.Sleep(downtime)
	var err error
	for range 50 { // the port may linger briefly after Close
		var b *kafka.Embedded
		if b, err = kafka.StartEmbedded(c.brokerOf); err == nil {
			c.broker = b
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("clustertest: restart broker: %w", err)
}

func (c *Cluster) closeBroker() {
	c.brokerMu.Lock()
	defer c.brokerMu.Unlock()
	if c.broker != nil {
		c.broker.Close()
		c.broker = nil
	}
}

func (c *Cluster) createTopics(partitions int32) error {
	cl, err := c.KafkaCluster().NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var topics []string
	for _, name := range system.ServiceNames() {
		topics = append(topics, events.Topic(name))
	}
	return kafka.EnsureTopics(ctx, cl, partitions, topics...)
}

// KafkaCluster returns how to reach the broker, for test clients.
func (c *Cluster) KafkaCluster() kafka.Cluster { return kafka.Cluster{Brokers: c.Brokers} }

// artifactsDir returns a fresh directory for this test's artifacts under
// $MART_ARTIFACTS (default $TMPDIR/mart-artifacts).
func artifactsDir(t testing.TB) string {
	root := os.Getenv("MART_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "mart-artifacts")
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(root, name+"-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("clustertest: artifacts: %v", err)
	}
	return dir
}

// FreeAddr returns a loopback address with a port nobody listens on now
// and that no earlier call returned: addresses are handed out before the
// processes bind them, and the kernel may offer a closed port again.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the mart binary once per test process and returns its
// path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mart-clustertest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mart")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mart")
		cmd.Dir = systemtest.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("clustertest: %v", buildErr)
	}
	return binPath
}

// get fetches url and returns the status, or an error.
func get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func freeAddr() (string, error) {
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		l.Close()
		if !given[addr] {
			given[addr] = true
			return addr, nil
		}
	}
}
