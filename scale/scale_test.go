package scale_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/clustertest"
	"github.com/onlinemart/mart/internal/config"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqltest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	usercore "github.com/onlinemart/mart/subgraphs/user/core"
)

// The shape of the run.
const (
	replicas   = 2
	routers    = 2
	partitions = 6 // per service topic; the services' own default is 3
	customers  = 8
	products   = 4
	stockUnits = 1_000_000
	password   = "scale-customer-password"
	sample     = 200 * time.Millisecond // relay sampling period
)

// consumerGroups are the services with an inbox consumer, and the topics
// each consumes (inbox.New in each service).
var consumerGroups = map[string][]string{
	"order":        {"product", "inventory", "payment"},
	"inventory":    {"product", "order"},
	"payment":      {"order", "inventory"},
	"notification": {"user", "order", "payment"},
}

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
//  7. after the load, every order is CONFIRMED, paid once, its stock
//     moved once, and every outbox is empty.
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
	adminToken, code, err := login(ctx, routerLB, clustertest.AdminEmail, clustertest.AdminPassword)
	if err != nil || adminToken == "" {
		t.Fatalf("admin login: %v %s", err, code)
	}
	productIDs := createProducts(t, routerLB, adminToken)
	var cust []customer
	for i := range customers {
		email := fmt.Sprintf("scale-%d-%d@example.com", time.Now().UnixNano(), i)
		id, tok, err := register(ctx, routerLB, email, password)
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
	for _, svc := range config.ServiceNames() {
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
		var out struct {
			CreateProduct struct {
				Product    *struct{ ID string }
				UserErrors []userError
			}
		}
		sku := fmt.Sprintf("SCALE-%03d", i)
		in := map[string]any{"sku": sku, "name": "Scale " + sku, "price": map[string]any{"amount": 100 + i, "currency": "USD"}}
		if err := call(ctx, url, admin, createProduct, map[string]any{"input": in}, &out); err != nil || out.CreateProduct.Product == nil {
			t.Fatalf("createProduct %s: %v %+v", sku, err, out.CreateProduct.UserErrors)
		}
		id := out.CreateProduct.Product.ID
		// Inventory learns of the product from its event.
		waitUntil(t, "stock for "+sku, time.Minute, func() bool {
			var out struct {
				AdjustStock struct{ UserErrors []userError }
			}
			err := call(ctx, url, admin, adjustStock, map[string]any{"id": id, "n": stockUnits, "key": "receipt-" + sku}, &out)
			return err == nil && len(out.AdjustStock.UserErrors) == 0
		})
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
	status    map[string]string // last status seen by the driver
	reqErrors int               // failed requests (retried)
	firstErr  string
	cancelled int
	slowest   time.Duration
	started   time.Time
	stopped   time.Time
}

func startLoad(ctx context.Context, url string, cust []customer, productIDs []string) *load {
	l := &load{orders: map[string]string{}, status: map[string]string{}, started: time.Now()}
	for i, cu := range cust {
		l.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				product := productIDs[(i+n)%len(productIDs)]
				key := fmt.Sprintf("scale-%s-%d", cu.id, n)
				began := time.Now()
				id, err := place(ctx, url, cu.token, product, key, l.requestFailed)
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
	for ctx.Err() == nil {
		time.Sleep(150 * time.Millisecond)
		var out struct{ Order *struct{ Status string } }
		if err := call(ctx, url, token, orderStatus, map[string]any{"id": id}, &out); err != nil {
			if ctx.Err() == nil {
				l.requestFailed(err)
			}
			continue
		}
		if out.Order == nil {
			continue
		}
		l.mu.Lock()
		l.status[id] = out.Order.Status
		l.mu.Unlock()
		switch out.Order.Status {
		case "CONFIRMED":
			l.confirmed.Add(1)
			l.mu.Lock()
			l.slowest = max(l.slowest, time.Since(began))
			l.mu.Unlock()
			return
		case "CANCELLED":
			l.mu.Lock()
			l.cancelled++
			l.mu.Unlock()
			return
		}
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// subscriptionAcrossRouters places orders through router 1 and follows
// each with a subscription opened directly on router 2 (which reaches
// whichever order replica the balancer picks; the saga runs in whichever
// replica owns the partitions).
func subscriptionAcrossRouters(t *testing.T, c *clustertest.Cluster, cu customer, product string) (n, violations int) {
	t.Helper()
	r1, r2 := c.Group(clustertest.RouterGroup).Procs[0], c.Group(clustertest.RouterGroup).Procs[1]
	path := []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"}
	for i := range 3 {
		id, err := place(context.Background(), r1.URL, cu.token, product, fmt.Sprintf("sub-%s-%d", cu.id, i), nil)
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
		tok, code, err := login(ctx, signer.URL, cu.email, password)
		if err != nil || tok == "" {
			t.Errorf("login at %s: %v %s", signer.Name, err, code)
			violations++
			continue
		}
		for _, p := range checkers {
			var out struct{ Me *struct{ ID, Email string } }
			if err := call(ctx, p.URL, tok, meQuery, nil, &out); err != nil || out.Me == nil || out.Me.ID != cu.id {
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
	if _, _, err := register(ctx, users[0].URL, email, password); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= usercore.MaxFailures; i++ {
		p := users[i%len(users)]
		_, code, err := login(ctx, p.URL, email, "wrong-password")
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
		tok, code, err := login(ctx, p.URL, email, password)
		if err != nil || tok != "" || code != string(usercore.TooManyAttempts) {
			t.Errorf("right password at %s after lockout: token %v, code %q, err %v", p.Name, tok != "", code, err)
			violations++
		}
	}
	return violations
}

// drain waits until every accepted order settled and every outbox is
// empty.
func drain(t *testing.T, c *clustertest.Cluster, l *load) {
	t.Helper()
	dbs := openDBs(t, c)
	want := len(l.ids())
	waitUntil(t, "the system to drain", 4*time.Minute, func() bool {
		zero := func(db *sql.DB, q string) bool {
			var n int
			return db.QueryRow(q).Scan(&n) == nil && n == 0
		}
		var orders, settledInInventory int
		if err := dbs["order"].QueryRow(`SELECT count(*) FROM orders`).Scan(&orders); err != nil || orders < want {
			return false
		}
		if err := dbs["inventory"].QueryRow(`SELECT count(*) FROM orders WHERE state <> 'RESERVED'`).Scan(&settledInInventory); err != nil || settledInInventory < orders {
			return false
		}
		if !zero(dbs["order"], `SELECT count(*) FROM orders WHERE status NOT IN ('CONFIRMED', 'CANCELLED')`) ||
			!zero(dbs["payment"], `SELECT count(*) FROM payments WHERE status IN ('PENDING', 'CHARGING')`) {
			return false
		}
		for _, db := range dbs {
			if !zero(db, `SELECT count(*) FROM outbox`) {
				return false
			}
		}
		return true
	})
	// Every group whole again: a replica killed late in the test leaves
	// its partitions waiting until its session expires.
	for _, g := range sortedKeys(consumerGroups) {
		waitGroup(t, c, g, replicas, topicPartitions(t, c, consumerGroups[g]), 3*time.Minute)
	}
	time.Sleep(2 * time.Second) // let the last consumers catch up
}

func openDBs(t *testing.T, c *clustertest.Cluster) map[string]*sql.DB {
	t.Helper()
	dbs := map[string]*sql.DB{}
	for _, s := range config.ServiceNames() {
		db, err := c.DB(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[s] = db
	}
	return dbs
}

// books are the database checks after the drain.
type books struct {
	orders, confirmed                          int
	notConfirmed, unknownOrders, missingOrders int
	historyDupes                               int
	paymentViolations                          int
	movementViolations, stockViolations        int
	notificationDupes                          int
	outboxLeft                                 int
}

func checkBooks(t *testing.T, c *clustertest.Cluster, l *load, productIDs []string) books {
	t.Helper()
	dbs := openDBs(t, c)
	var b books
	count := func(db *sql.DB, q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	accepted := l.ids()
	// Orders: all ours are in the database and CONFIRMED. The test's own
	// subscription orders are there too.
	rows, err := dbs["order"].Query(`SELECT id::text, status FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		inDB[id] = st
	}
	rows.Close()
	b.orders = len(inDB)
	for id, st := range inDB {
		if st == "CONFIRMED" {
			b.confirmed++
		} else {
			b.notConfirmed++
			t.Errorf("order %s: %s after the drain", id, st)
		}
	}
	for _, id := range accepted {
		if _, ok := inDB[id]; !ok {
			b.missingOrders++
			t.Errorf("order %s accepted but not in the order database", id)
		}
	}
	b.historyDupes = count(dbs["order"], `SELECT count(*) FROM (SELECT order_id, status FROM order_history GROUP BY 1, 2 HAVING count(*) > 1) d`)

	// Payments: exactly one SUCCEEDED payment per order, nothing else.
	b.paymentViolations = count(dbs["payment"], `SELECT count(*) FROM (SELECT order_id FROM payments GROUP BY order_id
		HAVING count(*) FILTER (WHERE status = 'SUCCEEDED') <> 1 OR count(*) <> 1) d`)
	if paid := count(dbs["payment"], `SELECT count(DISTINCT order_id) FROM payments WHERE status = 'SUCCEEDED'`); paid != b.confirmed {
		t.Errorf("%d orders paid, %d confirmed", paid, b.confirmed)
		b.paymentViolations += abs(paid - b.confirmed)
	}

	// Inventory: one reservation and one commit per order; counters equal
	// to the ledger; on hand = received − committed; nothing reserved.
	b.movementViolations = count(dbs["inventory"], `SELECT count(*) FROM (SELECT order_id FROM stock_movements WHERE order_id IS NOT NULL
		GROUP BY order_id HAVING count(*) FILTER (WHERE kind = 'RESERVATION') <> 1 OR count(*) FILTER (WHERE kind = 'COMMIT') <> 1
		OR count(*) <> 2) d`)
	if moved := count(dbs["inventory"], `SELECT count(DISTINCT order_id) FROM stock_movements WHERE kind = 'COMMIT'`); moved != b.confirmed {
		t.Errorf("%d orders committed in inventory, %d confirmed", moved, b.confirmed)
		b.movementViolations += abs(moved - b.confirmed)
	}
	b.stockViolations = count(dbs["inventory"], `SELECT count(*) FROM stock s WHERE s.reserved <> 0
		OR s.on_hand <> (SELECT coalesce(sum(on_hand_delta), 0) FROM stock_movements m WHERE m.product_id = s.product_id)
		OR s.reserved <> (SELECT coalesce(sum(reserved_delta), 0) FROM stock_movements m WHERE m.product_id = s.product_id)
		OR s.on_hand <> $1 - (SELECT count(*) FROM stock_movements m WHERE m.product_id = s.product_id AND m.kind = 'COMMIT')`, stockUnits)
	if n := count(dbs["inventory"], `SELECT count(*) FROM stock`); n != len(productIDs) {
		t.Errorf("%d stock rows, want %d", n, len(productIDs))
		b.stockViolations++
	}

	// Notifications: one per event and channel.
	b.notificationDupes = count(dbs["notification"], `SELECT count(*) FROM (SELECT event_id, channel FROM notifications GROUP BY 1, 2 HAVING count(*) > 1) d`)

	for s, db := range dbs {
		if n := count(db, `SELECT count(*) FROM outbox`); n > 0 {
			t.Errorf("%s: %d events left in the outbox", s, n)
			b.outboxLeft += n
		}
	}
	return b
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := events.Topic("order")
	admin, err := c.KafkaCluster().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl, err := c.KafkaCluster().NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type state struct {
		placed bool
		last   orderv1.Status
	}
	var ch chains
	seen := map[string]bool{}
	orders := map[string]*state{}
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions left %v)", topic, ctx.Err(), remaining)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			ch.records++
			meta, msg, err := events.Decode(r)
			if err != nil {
				t.Errorf("%s/%d@%d: %v", topic, r.Partition, r.Offset, err)
				ch.violations++
				return
			}
			if seen[meta.ID] {
				ch.duplicates++
				return
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
		})
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
