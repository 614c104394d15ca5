package scale_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	usercore "github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/clustertest"
	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/shopper"
)

// The shape of the run.
const (
	replicas     = 2
	routers      = 2
	partitions   = 6 // per service topic; the services' own default is 3
	customers    = 8
	products     = 4
	stockUnits   = 1_000_000
	password     = "scale-customer-password"
	customerName = "Scale Customer"
	sample       = 200 * time.Millisecond // relay sampling period
)

// consumerGroups are the services with an inbox consumer, and the
// services whose topics each consumes, as the event-flow map says.
var consumerGroups = func() map[string][]string {
	groups := map[string][]string{}
	for _, f := range system.EventFlow(new(system.Config)) {
		for _, c := range f.Consumers {
			if !slices.Contains(groups[c], f.Publisher) {
				groups[c] = append(groups[c], f.Publisher)
			}
		}
	}
	return groups
}()

// TestReplicas runs every service and the router as two processes behind
// haproxy under a steady order load and shows:
//
//  1. consumer groups split partitions between replicas, and rebalance
//     when one is killed (SIGKILL) and when it comes back;
//  2. exactly one outbox relay is active per service at every sample, and
//     a standby takes over when the active one is killed (measured);
//  3. each order's OrderStatusChanged events form a valid chain on the
//     topic (per-aggregate order kept through relay failovers);
//  4. a subscription opened on router 2 receives the status changes of
//     an order placed through router 1;
//  5. a token from one user replica is accepted by the other and by
//     router 2;
//  6. login lockout counts failures across user replicas;
//  7. after the load, the system's books hold (clustertest.CheckBooks:
//     no order lost or stuck, payments and stock consistent with each
//     order, one charge and one notification each, outboxes empty, no
//     dead letters) and, for this load, every order is CONFIRMED with one
//     RESERVATION and one COMMIT and on hand = received − committed.
//
// Violations of any of these are counted and must be 0. The figures go to
// the test log and to figures.md in the artifacts directory.
func TestReplicas(t *testing.T) {
	if os.Getenv("MART_SCALE_TEST") != "1" {
		t.Skip("the replica test is slow and needs haproxy: run it with make scale-test (MART_SCALE_TEST=1)")
	}
	began := time.Now()
	c := clustertest.Start(t, clustertest.Options{Replicas: replicas, Routers: routers, Partitions: partitions})
	f := &figures{started: time.Since(began)}
	t.Logf("cluster up in %v; artifacts in %s", f.started.Round(time.Second), c.Artifacts)
	ctx := context.Background()
	routerLB := c.Group(clustertest.RouterGroup).URL

	// Catalog and customers, through the router balancer.
	adminToken, code, err := shopper.Login(ctx, routerLB, clustertest.AdminEmail, clustertest.AdminPassword)
	if err != nil || adminToken == "" {
		t.Fatalf("admin login: %v %s", err, code)
	}
	productIDs := createProducts(t, routerLB, adminToken)
	var cust []customer
	for i := range customers {
		email := fmt.Sprintf("scale-%d-%d@example.com", time.Now().UnixNano(), i)
		id, tok, err := shopper.Register(ctx, routerLB, email, password, customerName)
		if err != nil {
			t.Fatal(err)
		}
		cust = append(cust, customer{id: id, email: email, token: tok})
	}

	// Watchers: relay activity, group membership, Postgres connections.
	watchCtx, stopWatch := context.WithCancel(ctx)
	relays := watchRelays(watchCtx, c)
	groups := watchGroups(watchCtx, c)
	conns := watchConnections(watchCtx, c)

	// The steady load.
	loadCtx, stopLoad := context.WithCancel(ctx)
	load := startLoad(loadCtx, routerLB, cust, productIDs)
	waitUntil(t, "first orders confirmed", 2*time.Minute, func() bool { return load.confirmed.Load() >= 2*customers })
	t.Logf("load running: %d orders confirmed", load.confirmed.Load())

	// 1. Consumer groups split partitions between the two replicas.
	for _, g := range sortedKeys(consumerGroups) {
		all := topicPartitions(t, c, consumerGroups[g])
		m := waitGroup(t, c, g, 2, all, 90*time.Second)
		var split []string
		for _, mem := range m.Members {
			split = append(split, fmt.Sprint(len(mem.Partitions)))
		}
		f.splits = append(f.splits, fmt.Sprintf("%s %s of %d", g, strings.Join(split, "+"), len(all)))
	}
	t.Logf("partition split: %s", strings.Join(f.splits, "; "))

	// 4. Subscription on router 2, order placed through router 1.
	f.subscriptions, f.subscriptionViolations = subscriptionAcrossRouters(t, c, cust[0], productIDs[0])

	// 5. Tokens from one user replica verify everywhere.
	f.tokenViolations = tokensVerifyEverywhere(t, c, cust[1])

	// 6. Lockout is shared between user replicas.
	f.lockoutViolations = lockoutShared(t, c)

	// 1b. Kill an order replica: the group shrinks to the survivor, which
	// takes every partition; it grows back on restart.
	orderParts := topicPartitions(t, c, consumerGroups["order"])
	victim := c.Group("order").Procs[0]
	before := load.confirmed.Load()
	killedAt := time.Now()
	relays.expectFailover("order")
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, c, "order", 1, orderParts, 3*time.Minute)
	f.rebalanceAfterKill = time.Since(killedAt)
	f.confirmedWhileDown = load.confirmed.Load() - before
	t.Logf("order-1 killed: group rebalanced to 1 member in %v; %d orders confirmed meanwhile",
		f.rebalanceAfterKill.Round(time.Millisecond), f.confirmedWhileDown)
	restartAt := time.Now()
	restart(t, c, victim)
	waitGroup(t, c, "order", 2, orderParts, 3*time.Minute)
	f.rebalanceAfterRestart = time.Since(restartAt)
	relays.failoverDone("order")
	t.Logf("order-1 restarted: 2 members again after %v", f.rebalanceAfterRestart.Round(time.Millisecond))

	// 2. Relay failover in every service: kill the active relay's process.
	for _, svc := range system.ServiceNames() {
		active := waitActiveRelay(t, c, svc)
		other := otherReplica(c, svc, active)
		relays.expectFailover(svc)
		killed := time.Now()
		if err := active.Kill(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, svc+" relay takeover", time.Minute, func() bool { return relayActive(ctx, other) == 1 })
		took := time.Since(killed)
		f.takeovers = append(f.takeovers, takeover{service: svc, from: active.Name, to: other.Name, took: took})
		t.Logf("%s: relay of %s killed, %s active after %v", svc, active.Name, other.Name, took.Round(time.Millisecond))
		restart(t, c, active)
		time.Sleep(time.Second) // the restarted one must stand by
		if relayActive(ctx, active) != 0 {
			t.Errorf("%s: restarted %s became active although %s holds the lock", svc, active.Name, other.Name)
		}
		relays.failoverDone(svc)
	}

	// Keep the load a little longer with everything back, then stop it and
	// let the system drain.
	time.Sleep(10 * time.Second)
	stopLoad()
	load.wg.Wait()
	loadEnd := time.Now()
	load.mu.Lock()
	load.stopped = loadEnd
	load.mu.Unlock()
	drain(t, c, load)
	f.drained = time.Since(loadEnd)
	stopWatch()
	relays.wait()
	groups.wait()
	conns.wait()

	// 7. The books.
	f.load = load.summary()
	f.relaySamples, f.relayViolations, f.relayGapSamples = relays.result()
	f.rebalances = groups.result()
	f.peakConnections = conns.peak.Load()
	f.books = checkBooks(t, c, load, productIDs)
	// 3. Event order per aggregate.
	f.chains = checkOrderEvents(t, c, load)
	f.total = time.Since(began)

	report := f.markdown()
	t.Log("\n" + report)
	if err := os.WriteFile(filepath.Join(c.Artifacts, "figures.md"), []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	for name, n := range f.violations() {
		if n != 0 {
			t.Errorf("%s: %d violations", name, n)
		}
	}
}

type customer struct{ id, email, token string }

func createProducts(t *testing.T, url, admin string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range products {
		id, err := shopper.CreateProduct(ctx, url, admin, fmt.Sprintf("SCALE-%03d", i), int64(100+i), stockUnits)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// load is the order driver: customers placing one-unit orders and
// following each to CONFIRMED, one at a time each, until stopped.
type load struct {
	wg        sync.WaitGroup
	confirmed atomic.Int64
	mu        sync.Mutex
	orders    map[string]string // order id → product id, every order accepted
	reqErrors int               // failed requests (retried)
	firstErr  string
	cancelled int
	slowest   time.Duration
	started   time.Time
	stopped   time.Time
}

func startLoad(ctx context.Context, url string, cust []customer, productIDs []string) *load {
	l := &load{orders: map[string]string{}, started: time.Now()}
	for i, cu := range cust {
		l.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				product := productIDs[(i+n)%len(productIDs)]
				key := fmt.Sprintf("scale-%s-%d", cu.id, n)
				began := time.Now()
				id, _, err := shopper.PlaceOrder(ctx, url, cu.token, shopper.Order{Product: product, Quantity: 1, Key: key}, l.requestFailed)
				if err != nil {
					if ctx.Err() == nil {
						l.requestFailed(err)
						time.Sleep(time.Second)
					}
					continue
				}
				l.mu.Lock()
				l.orders[id] = product
				l.mu.Unlock()
				l.follow(ctx, url, cu.token, id, began)
			}
		})
	}
	return l
}

func (l *load) requestFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqErrors++
	if l.firstErr == "" {
		l.firstErr = err.Error()
	}
}

// follow polls the order until it settles; the stop of the load ends the
// following too (drain checks the rest in the database).
func (l *load) follow(ctx context.Context, url, token, id string, began time.Time) {
	status := shopper.Follow(ctx, url, token, id, time.Hour, l.requestFailed)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch status {
	case "CONFIRMED":
		l.confirmed.Add(1)
		l.slowest = max(l.slowest, time.Since(began))
	case "CANCELLED":
		l.cancelled++
	}
}

func (l *load) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.orders))
	for id := range l.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

type loadSummary struct {
	accepted, confirmedByDriver, reqErrors, cancelled int
	firstErr                                          string
	duration, slowest                                 time.Duration
}

func (l *load) summary() loadSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadSummary{
		accepted: len(l.orders), confirmedByDriver: int(l.confirmed.Load()), reqErrors: l.reqErrors,
		cancelled: l.cancelled, firstErr: l.firstErr, duration: l.stopped.Sub(l.started), slowest: l.slowest,
	}
}

// restart starts a killed process again and waits until it serves and the
// balancer routes to it.
func restart(t *testing.T, c *clustertest.Cluster, p *clustertest.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatalf("restart %s: %v (log %s)", p.Name, err, p.LogPath())
	}
	if err := c.WaitBalanced(ctx, p.Target); err != nil {
		t.Fatal(err)
	}
}

func otherReplica(c *clustertest.Cluster, svc string, p *clustertest.Process) *clustertest.Process {
	for _, q := range c.Group(svc).Procs {
		if q != p {
			return q
		}
	}
	return nil
}

func relayActive(ctx context.Context, p *clustertest.Process) float64 {
	if !p.Running() {
		return 0
	}
	v, _, err := p.Metric(ctx, "mart_outbox_relay_active", nil)
	if err != nil {
		return 0
	}
	return v
}

// waitActiveRelay returns the replica of svc whose relay is active.
func waitActiveRelay(t *testing.T, c *clustertest.Cluster, svc string) *clustertest.Process {
	t.Helper()
	var active *clustertest.Process
	waitUntil(t, svc+" active relay", time.Minute, func() bool {
		for _, p := range c.Group(svc).Procs {
			if relayActive(context.Background(), p) == 1 {
				active = p
				return true
			}
		}
		return false
	})
	return active
}

func topicPartitions(t *testing.T, c *clustertest.Cluster, services []string) []string {
	t.Helper()
	var topics []string
	for _, s := range services {
		topics = append(topics, events.Topic(s))
	}
	all, err := c.TopicPartitions(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// waitGroup waits until group is stable with n members, each owning some
// partitions, together owning exactly all, none twice.
func waitGroup(t *testing.T, c *clustertest.Cluster, group string, n int, all []string, timeout time.Duration) clustertest.Membership {
	t.Helper()
	var m clustertest.Membership
	var err error
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err = c.DescribeGroup(ctx, group)
		cancel()
		if err == nil && m.State == "Stable" && len(m.Members) == n {
			owned, overlaps := m.Owned()
			ok := overlaps == 0 && slices.Equal(owned, all)
			for _, mem := range m.Members {
				ok = ok && len(mem.Partitions) > 0
			}
			if ok {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: want %d members owning %d partitions, have %+v (%v)", group, n, len(all), m, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// subscriptionAcrossRouters places orders through router 1 and follows
// each with a subscription opened directly on router 2 (which reaches
// whichever order replica the balancer picks; the saga runs in whichever
// replica owns the partitions).
func subscriptionAcrossRouters(t *testing.T, c *clustertest.Cluster, cu customer, product string) (n, violations int) {
	t.Helper()
	r1, r2 := c.Group(clustertest.RouterGroup).Procs[0], c.Group(clustertest.RouterGroup).Procs[1]
	path := []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"}
	for i := range 3 {
		id, _, err := shopper.PlaceOrder(context.Background(), r1.URL, cu.token,
			shopper.Order{Product: product, Quantity: 1, Key: fmt.Sprintf("sub-%s-%d", cu.id, i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub := gqltest.Client{URL: r2.URL, Token: cu.token}.Subscribe(t,
			`subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status } }`, map[string]any{"id": id})
		var seen []string
		for !slices.Contains(seen, "CONFIRMED") && !slices.Contains(seen, "CANCELLED") {
			m, ok := sub.Poll(2 * time.Minute)
			if !ok || m.Type != "next" || len(m.Payload.Errors) > 0 {
				t.Errorf("subscription on %s for order %s: %+v (ok %v; seen %v)", r2.Name, id, m, ok, seen)
				violations++
				break
			}
			var ev struct {
				OrderStatusChanged struct{ OrderID, Status string }
			}
			_ = json.Unmarshal(m.Payload.Data, &ev)
			if ev.OrderStatusChanged.OrderID != id {
				t.Errorf("subscription: event of another order: %s", m.Payload.Data)
				violations++
			}
			seen = append(seen, ev.OrderStatusChanged.Status)
		}
		if i := slices.Index(path, firstOr(seen)); i < 0 || !slices.Equal(seen, path[i:]) {
			t.Errorf("subscription on %s saw %v, want a tail of %v", r2.Name, seen, path)
			violations++
		}
		t.Logf("order %s placed on %s, subscription on %s saw %v", id, r1.Name, r2.Name, seen)
		n++
	}
	return n, violations
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// meQuery is what a token is checked with.
const meQuery = `{ me { id email } }`

// tokensVerifyEverywhere signs in at each user replica directly and uses
// the token at the other replica, at each router and at itself.
func tokensVerifyEverywhere(t *testing.T, c *clustertest.Cluster, cu customer) (violations int) {
	t.Helper()
	ctx := context.Background()
	users := c.Group("user").Procs
	var checkers []*clustertest.Process
	checkers = append(checkers, users...)
	checkers = append(checkers, c.Group(clustertest.RouterGroup).Procs...)
	for _, signer := range users {
		tok, code, err := shopper.Login(ctx, signer.URL, cu.email, password)
		if err != nil || tok == "" {
			t.Errorf("login at %s: %v %s", signer.Name, err, code)
			violations++
			continue
		}
		for _, p := range checkers {
			var out struct{ Me *struct{ ID, Email string } }
			if err := shopper.Call(ctx, p.URL, tok, meQuery, nil, &out); err != nil || out.Me == nil || out.Me.ID != cu.id {
				t.Errorf("token from %s at %s: %v %+v", signer.Name, p.Name, err, out.Me)
				violations++
			}
		}
	}
	return violations
}

// lockoutShared fails sign-ins alternately at the two user replicas: the
// email locks after MaxFailures in total, and then the right password is
// refused at both.
func lockoutShared(t *testing.T, c *clustertest.Cluster) (violations int) {
	t.Helper()
	ctx := context.Background()
	users := c.Group("user").Procs
	email := fmt.Sprintf("lockout-%d@example.com", time.Now().UnixNano())
	if _, _, err := shopper.Register(ctx, users[0].URL, email, password, customerName); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= usercore.MaxFailures; i++ {
		p := users[i%len(users)]
		_, code, err := shopper.Login(ctx, p.URL, email, "wrong-password")
		want := string(usercore.InvalidCredentials)
		if i == usercore.MaxFailures {
			want = string(usercore.TooManyAttempts)
		}
		if err != nil || code != want {
			t.Errorf("failed sign-in %d at %s: %v %q, want %s", i, p.Name, err, code, want)
			violations++
		}
	}
	for _, p := range users {
		tok, code, err := shopper.Login(ctx, p.URL, email, password)
		if err != nil || tok != "" || code != string(usercore.TooManyAttempts) {
			t.Errorf("right password at %s after lockout: token %v, code %q, err %v", p.Name, tok != "", code, err)
			violations++
		}
	}
	return violations
}

// drain waits until the whole system has settled: every accepted order
// stored and resting, its payment and stock settled, its notifications
// delivered, every outbox empty (clustertest.CheckBooks finds nothing left
// to do), and every consumer group whole again. If that takes more than 4
// minutes the test fails, and the books say what was left.
func drain(t *testing.T, c *clustertest.Cluster, l *load) {
	t.Helper()
	ctx := context.Background()
	accepted := l.ids()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		b, err := c.CheckBooks(ctx, accepted)
		if err == nil && b.Settled() {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the system did not drain in 4m: %v %v", err, b.Violations())
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Every group whole again: a replica killed late in the test leaves
	// its partitions waiting until its session expires.
	for _, g := range sortedKeys(consumerGroups) {
		waitGroup(t, c, g, replicas, topicPartitions(t, c, consumerGroups[g]), 3*time.Minute)
	}
	time.Sleep(2 * time.Second) // let the last consumers catch up
}

// books are the checks after the drain: the cross-service invariants of
// clustertest.CheckBooks, and what this suite's load promises on top (one
// unit per order, never cancelled, stock received once).
type books struct {
	shared           clustertest.Books
	notConfirmed     int // orders not CONFIRMED
	historyDupes     int // (order, status) written twice in order_history
	movementMisfits  int // not exactly one RESERVATION and one COMMIT per order
	onHandViolations int // reserved ≠ 0, on_hand ≠ stockUnits − committed, or a stock row too many or missing
}

func checkBooks(t *testing.T, c *clustertest.Cluster, l *load, productIDs []string) books {
	t.Helper()
	ctx := context.Background()
	shared, err := c.CheckBooks(ctx, l.ids())
	if err != nil {
		t.Fatalf("books: %v", err)
	}
	for _, e := range shared.Examples {
		t.Log("books: " + e)
	}
	b := books{shared: shared}
	count := func(db *sql.DB, q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	ord, inv := openDB(t, c, "order"), openDB(t, c, "inventory")

	// Orders: every one CONFIRMED (the test's own subscription orders
	// too), each status written once.
	confirmed := shared.ByStatus["CONFIRMED"]
	if b.notConfirmed = shared.Orders - confirmed; b.notConfirmed != 0 {
		t.Errorf("orders after the drain: %v, want all CONFIRMED", shared.ByStatus)
	}
	b.historyDupes = count(ord, `SELECT count(*) FROM (SELECT order_id, status FROM order_history GROUP BY 1, 2 HAVING count(*) > 1) d`)

	// Inventory: one reservation and one commit per order, each of one
	// unit; on hand = received − committed; nothing reserved.
	b.movementMisfits = count(inv, `SELECT count(*) FROM (SELECT order_id FROM stock_movements WHERE order_id IS NOT NULL
		GROUP BY order_id HAVING count(*) FILTER (WHERE kind = 'RESERVATION') <> 1 OR count(*) FILTER (WHERE kind = 'COMMIT') <> 1
		OR count(*) <> 2) d`)
	if moved := count(inv, `SELECT count(DISTINCT order_id) FROM stock_movements WHERE kind = 'COMMIT'`); moved != confirmed {
		t.Errorf("%d orders committed in inventory, %d confirmed", moved, confirmed)
		b.movementMisfits += abs(moved - confirmed)
	}
	b.onHandViolations = count(inv, `SELECT count(*) FROM stock s WHERE s.reserved <> 0
		OR s.on_hand <> $1 - (SELECT count(*) FROM stock_movements m WHERE m.product_id = s.product_id AND m.kind = 'COMMIT')`, stockUnits)
	if shared.Products != len(productIDs) {
		t.Errorf("%d stock rows, want %d", shared.Products, len(productIDs))
		b.onHandViolations++
	}
	return b
}

func openDB(t *testing.T, c *clustertest.Cluster, service string) *sql.DB {
	t.Helper()
	db, err := c.DB(service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func abs(n int) int { return max(n, -n) }

// chains is what the order topic shows.
type chains struct {
	records, duplicates, orders, violations int
}

// checkOrderEvents reads the order topic from the start and checks each
// order's events: OrderPlaced first, then status changes each starting
// where the previous ended, rank going up, ending CONFIRMED. A record
// published twice (same ce_id: a relay that died between publishing and
// deleting) is counted and skipped, as consumers skip it.
func checkOrderEvents(t *testing.T, c *clustertest.Cluster, l *load) chains {
	t.Helper()
	topic := events.Topic("order")
	type state struct {
		placed bool
		last   orderv1.Status
	}
	var ch chains
	seen := map[string]bool{}
	orders := map[string]*state{}
	err := c.ReadTopic(context.Background(), topic, func(r *kgo.Record) error {
		ch.records++
		meta, msg, err := events.Decode(r)
		if err != nil {
			t.Errorf("%s/%d@%d: %v", topic, r.Partition, r.Offset, err)
			ch.violations++
			return nil
		}
		if seen[meta.ID] {
			ch.duplicates++
			return nil
		}
		seen[meta.ID] = true
		st := orders[meta.Key]
		if st == nil {
			st = &state{}
			orders[meta.Key] = st
		}
		switch m := msg.(type) {
		case *orderv1.OrderPlaced:
			if st.placed {
				t.Errorf("order %s placed twice (event %s)", meta.Key, meta.ID)
				ch.violations++
			}
			st.placed, st.last = true, orderv1.Status_STATUS_PENDING
		case *orderv1.OrderStatusChanged:
			switch {
			case !st.placed:
				t.Errorf("order %s: %v → %v before OrderPlaced", meta.Key, m.OldStatus, m.NewStatus)
				ch.violations++
			case m.OldStatus != st.last || m.NewStatus <= m.OldStatus:
				t.Errorf("order %s: %v → %v after %v", meta.Key, m.OldStatus, m.NewStatus, st.last)
				ch.violations++
			}
			st.last = m.NewStatus
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ch.orders = len(orders)
	for _, id := range l.ids() {
		if st := orders[id]; st == nil || st.last != orderv1.Status_STATUS_CONFIRMED {
			t.Errorf("order %s: events end at %v, want CONFIRMED", id, st)
			ch.violations++
		}
	}
	return ch
}

// watchConnections samples the connections to the cluster's databases.
type connWatch struct {
	peak atomic.Int64
	done chan struct{}
}

func (w *connWatch) wait() { <-w.done }

func watchConnections(ctx context.Context, c *clustertest.Cluster) *connWatch {
	var names []string
	for _, raw := range c.Databases {
		if u, err := url.Parse(raw); err == nil {
			names = append(names, strings.TrimPrefix(u.Path, "/"))
		}
	}
	w := &connWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		db, err := sql.Open("pgx", pgtest.ServerURL())
		if err != nil {
			return
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		for ctx.Err() == nil {
			var n int64
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)`, names).Scan(&n); err == nil && n > w.peak.Load() {
				w.peak.Store(n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return w
}
