package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// Subscribers per sub-benchmark; -short runs the first.
var fanoutKs = []int{200, 1_000, 5_000, 10_000}

const (
	fanoutOrders     = 50 // orders the subscribers are spread over
	fanoutCustomers  = 5  // who place them (owners subscribe too)
	fanoutOwnerEvery = 10 // every tenth round of subscribers uses the owner's token
	fanoutDials      = 64 // websocket handshakes in flight at once
	fanoutFileLimit  = 200_000
	fanoutSpareFDs   = 1_000 // databases, Kafka, HTTP pools, files
	// for every subscriber to get a status (a message lost for good should
	// not hold the run for minutes)
	fanoutWait = 30 * time.Second
	// for the complete after DELIVERED (thousands of them take seconds on
	// a busy machine); repeats meanwhile are counted
	fanoutCompleteWait = 10 * time.Second
)

const followStatus = `subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status at } }`

// BenchmarkFanout measures the subscription fan-out of the router: K
// websocket subscribers (graphql-transport-ws) on orderStatusChanged,
// spread over fanoutOrders CONFIRMED orders, then every order is shipped
// and delivered. Every subscriber must receive SHIPPED and DELIVERED and
// then complete; the benchmark fails when one does not. Latency runs from
// the event's CloudEvents ce_time (written with the status change, in the
// same transaction) to the frame's receipt. One op is one whole run
// (-benchtime=1x); its ns/op means nothing.
func BenchmarkFanout(b *testing.B) {
	raiseFileLimit(b, fanoutFileLimit) // before anything opens sockets; the router inherits it
	sys := systemtest.Start(b, "user", "product", "order", "inventory", "payment", "notification")
	// One load generator (one address) holds every subscriber.
	router := startRouter(b, sys, "MART_WS_MAX_CONNS_PER_CLIENT=-1")
	m := &mart{sys: sys, admin: sys.Login(b, systemtest.AdminEmail, systemtest.AdminPassword)}
	tail := fanoutTailEvents(b, sys.Brokers)
	products := m.products(b, "FAN", 1, 1_000_000)
	customers := m.customers(b, fanoutCustomers)
	orderPort := fanoutPort(b, sys.Services["order"])

	ks := fanoutKs
	if testing.Short() {
		ks = ks[:1]
	}
	rows := map[int][]string{}
	for _, k := range ks {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			// The router opens one upstream websocket per subscription, and
			// the order subgraph runs in this process: each subscriber costs
			// this process and the router two sockets each.
			if limit := fileLimit(); uint64(2*k+fanoutSpareFDs) > limit {
				b.Skipf("K=%d needs about %d open files in this process and in the router; the limit is %d", k, 2*k+fanoutSpareFDs, limit)
			}
			r := runFanout(b, m, router, tail, products, customers, orderPort, k)
			r.report(b)
			rows[k] = r.row()
		})
	}
	t := table{
		Title: "Subscription fan-out",
		Intro: fmt.Sprintf("K websocket subscribers through the router (its own process) on `orderStatusChanged`, "+
			"spread over %d CONFIRMED orders (every %dth round of subscribers with the owner's token, the rest an admin's); "+
			"each order is then shipped, then delivered: 2K messages. Latency: the OrderStatusChanged event's `ce_time` "+
			"(set in the status change's transaction, µs after the `at` field) → the client reading the frame; "+
			"*publish* is the Kafka record's timestamp → receipt.", fanoutOrders, fanoutOwnerEvery),
		Header: []string{"K", "connected", "connect s", "upstream ws", "messages", "completed", "repeats", "p50 ms", "p99 ms", "max ms",
			"publish→recv p50 ms", "router RSS before / with K / peak MiB", "KiB per sub"},
		Notes: "*upstream ws*: the router's established connections to the order subgraph with K open, less those before " +
			"(its idle HTTP pool). *completed*: subscriptions the router completed within " + fanoutCompleteWait.String() +
			" of the last DELIVERED; *repeats*: statuses a subscriber received again in that time. *KiB per sub*: " +
			"(RSS with K − RSS before) ÷ K. The peak is the router's high-water mark since it started.",
	}
	for _, k := range ks {
		if row, ok := rows[k]; ok {
			t.Rows = append(t.Rows, row)
		}
	}
	writeTable(b, "30-fanout", t)
}

// fileLimit is RLIMIT_NOFILE now.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// raiseFileLimit lifts RLIMIT_NOFILE (soft and, with CAP_SYS_RESOURCE,
// hard) to n, or as far as the hard limit allows.
func raiseFileLimit(b *testing.B, n uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: take what the hard limit allows.
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			b.Fatal(err)
		}
		b.Logf("file limit %d (could not raise it to %d)", lim.Max, n)
	}
}

// statuses a subscriber receives: the current one when it is the first on
// its upstream subscription, then the two the benchmark causes.
var fanoutStatuses = []string{"CONFIRMED", "SHIPPED", "DELIVERED"}

// A fanoutSub is one client websocket with one subscription.
type fanoutSub struct {
	order    int
	got      [3]time.Time // receipt of CONFIRMED, SHIPPED, DELIVERED
	repeats  int          // a status received again
	complete bool
	err      error // anything but messages and a complete
	conn     *websocket.Conn
	done     chan struct{} // closed when its read loop ends
	closing  atomic.Bool   // the benchmark is closing the connection
}

type fanoutRun struct {
	k, connected   int
	connect        time.Duration
	firstConfirmed int // subscribers that got the current status (one per upstream subscription)
	upstream       int // router sockets to the order subgraph for subscriptions
	expected, recv int
	repeats        int // statuses received again (the router re-runs a completed subscription)
	completed      int
	latency        []time.Duration // ce_time → receipt
	byStatus       [3][]time.Duration
	fromPublish    []time.Duration // Kafka record timestamp → receipt
	rssBefore      int64
	rssOpen        int64
	rssPeak        int64
	routerFDs      int
	benchFDs       int
	benchGoroutine int
}

// runFanout places the orders, opens k subscribers, ships and delivers
// every order and collects what arrived.
func runFanout(b *testing.B, m *mart, router *process, tail *fanoutTail, products, customers []string, orderPort, k int) fanoutRun {
	b.Helper()
	b.StopTimer()
	ids, owners := fanoutOrdersConfirmed(b, m, products, customers, fanoutOrders)
	r := fanoutRun{k: k, rssBefore: router.RSS()}
	idle := fanoutSocketsTo(router.cmd.Process.Pid, orderPort) // pooled HTTP connections

	// Subscribe: bounded handshakes in flight, so the router's accept queue
	// and the benchmark's dials do not time out in a burst.
	wsURL := strings.Replace(m.sys.RouterURL, "http", "ws", 1)
	subs := make([]*fanoutSub, k)
	var attached, shipped, delivered, ended, failed atomic.Int64
	sem := make(chan struct{}, fanoutDials)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range subs {
		s := &fanoutSub{order: i % fanoutOrders, done: make(chan struct{})}
		subs[i] = s
		token := m.admin
		if (i/fanoutOrders)%fanoutOwnerEvery == 0 {
			token = owners[s.order]
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if s.err = s.open(wsURL, token, ids[s.order]); s.err != nil {
				close(s.done)
				return
			}
			go s.read(&attached, &shipped, &delivered, &ended, &failed)
		})
	}
	wg.Wait()
	r.connect = time.Since(start)
	var firstErr error
	for _, s := range subs {
		if s.err == nil {
			r.connected++
		} else if firstErr == nil {
			firstErr = s.err
		}
	}
	if r.connected < k {
		for _, s := range subs {
			if s.conn != nil {
				s.conn.CloseNow()
			}
			<-s.done
		}
		b.Errorf("K=%d: %d of %d subscribers connected; the first error: %v", k, r.connected, k, firstErr)
		return r
	}
	// Each subscription starts with the order's current status: once all
	// have it, every one is attached upstream and will see the changes.
	fanoutWaitCount(b, "the current status", &attached, &failed, k)

	r.rssOpen = router.RSS()
	r.upstream = fanoutSocketsTo(router.cmd.Process.Pid, orderPort) - idle
	r.routerFDs = fanoutFDs(router.cmd.Process.Pid)
	r.benchFDs = fanoutFDs(syscall.Getpid())
	r.benchGoroutine = runtime.NumGoroutine()

	// A subscriber whose connection ended early will not get the rest:
	// stop waiting when those that remain have everything.
	b.StartTimer()
	fanoutAdvance(b, m, ids, "markShipped")
	fanoutWaitCount(b, "SHIPPED", &shipped, &failed, k)
	fanoutAdvance(b, m, ids, "markDelivered")
	fanoutWaitCount(b, "DELIVERED", &delivered, &failed, k)
	b.StopTimer()
	// DELIVERED is terminal: the subgraph completes its stream, and the
	// router should complete each client's subscription.
	time.Sleep(fanoutCompleteWait)
	for _, s := range subs { // end the read loops before reading what they saw
		s.closing.Store(true)
		s.conn.CloseNow()
		<-s.done
	}
	r.rssPeak = router.PeakRSS()

	r.expected = 2 * k
	for _, s := range subs {
		if !s.got[0].IsZero() {
			r.firstConfirmed++
		}
		for st := 1; st < 3; st++ {
			if s.got[st].IsZero() {
				continue
			}
			r.recv++
			ev := tail.wait(b, ids[s.order], fanoutStatuses[st])
			r.latency = append(r.latency, s.got[st].Sub(ev.ceTime))
			r.byStatus[st] = append(r.byStatus[st], s.got[st].Sub(ev.ceTime))
			r.fromPublish = append(r.fromPublish, s.got[st].Sub(ev.published))
		}
		r.repeats += s.repeats
		switch {
		case s.complete:
			r.completed++
		case s.err != nil && firstErr == nil:
			firstErr = s.err
		}
	}
	if r.completed != k {
		b.Errorf("K=%d: %d of %d subscriptions completed within %s of the last DELIVERED (%d repeated messages meanwhile; first error: %v)",
			k, r.completed, k, fanoutCompleteWait, r.repeats, firstErr)
	}
	if r.recv != r.expected {
		b.Errorf("K=%d: %d of %d messages received", k, r.recv, r.expected)
	}
	return r
}

// open dials the router, authenticates in connection_init (as browsers
// must) and starts the subscription.
func (s *fanoutSub) open(wsURL, token, orderID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	s.conn = conn
	init, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + token})
	if err := wsjson.Write(ctx, conn, fanoutFrame{Type: "connection_init", Payload: init}); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	var ack fanoutFrame
	if err := wsjson.Read(ctx, conn, &ack); err != nil {
		return fmt.Errorf("want connection_ack: %w", err)
	}
	if ack.Type != "connection_ack" {
		return fmt.Errorf("want connection_ack, got %q", ack.Type)
	}
	op, _ := json.Marshal(map[string]any{"query": followStatus, "variables": map[string]any{"id": orderID}})
	if err := wsjson.Write(ctx, conn, fanoutFrame{ID: "1", Type: "subscribe", Payload: op}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

type fanoutFrame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// read records when each status arrives, until the subscription
// completes or the connection closes.
func (s *fanoutSub) read(attached, shipped, delivered, ended, failed *atomic.Int64) {
	defer close(s.done)
	defer func() {
		if s.err != nil {
			failed.Add(1)
		}
		ended.Add(1)
	}()
	for {
		var m fanoutFrame
		if err := wsjson.Read(context.Background(), s.conn, &m); err != nil {
			if !s.closing.Load() {
				s.err = fmt.Errorf("connection ended before complete: %w", err)
			}
			return
		}
		now := time.Now()
		switch m.Type {
		case "ping":
			_ = wsjson.Write(context.Background(), s.conn, fanoutFrame{Type: "pong"})
		case "next":
			var p struct {
				Data   struct{ OrderStatusChanged struct{ Status string } }
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
				s.err = fmt.Errorf("next: %s", m.Payload)
				return
			}
			// Keep the first receipt: a repeat must not move it later.
			st := slices.Index(fanoutStatuses, p.Data.OrderStatusChanged.Status)
			switch {
			case st < 0:
				s.err = fmt.Errorf("next: unexpected %s", m.Payload)
				return
			case !s.got[st].IsZero():
				s.repeats++
			case st == 1:
				s.got[st] = now
				shipped.Add(1)
			case st == 2:
				s.got[st] = now
				delivered.Add(1)
			default:
				s.got[st] = now
				attached.Add(1)
			}
		case "error":
			s.err = fmt.Errorf("error: %s", m.Payload)
			return
		case "complete":
			s.complete = true
			return
		}
	}
}

// fanoutWaitCount waits until n (plus failed, when given) reaches want,
// reporting an error after fanoutWait; runFanout then counts what is missing.
func fanoutWaitCount(b *testing.B, what string, n, failed *atomic.Int64, want int) {
	b.Helper()
	deadline := time.Now().Add(fanoutWait)
	count := func() int64 {
		if failed == nil {
			return n.Load()
		}
		return n.Load() + failed.Load()
	}
	for count() < int64(want) {
		if time.Now().After(deadline) {
			b.Errorf("timed out waiting for %s: %d of %d subscribers", what, n.Load(), want)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// advance runs an admin status mutation on every order, a few at a time,
// as a warehouse would.
func fanoutAdvance(b *testing.B, m *mart, ids []string, mutation string) {
	b.Helper()
	q := fmt.Sprintf(`mutation($id: ID!) { %s(input: {orderId: $id}) { userErrors { field message code } } }`, mutation)
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var out map[string]struct{ UserErrors []userError }
			errs[i] = call(context.Background(), m.sys.RouterURL, m.admin, q, map[string]any{"id": id}, &out)
			if ue := out[mutation].UserErrors; errs[i] == nil && len(ue) > 0 {
				errs[i] = fmt.Errorf("%+v", ue)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("%s %s: %v", mutation, ids[i], err)
		}
	}
}

// confirmedOrders places n orders of one unit with tok_visa, spread over
// the customers, and waits until each is CONFIRMED. It returns their ids
// and each one's owner token.
func fanoutOrdersConfirmed(b *testing.B, m *mart, products, customers []string, n int) (ids, owners []string) {
	b.Helper()
	ids, owners = make([]string, n), make([]string, n)
	errs := make([]error, n)
	stamp := time.Now().UnixNano()
	var wg sync.WaitGroup
	for c, token := range customers {
		wg.Go(func() {
			for i := c; i < n; i += len(customers) {
				owners[i] = token
				ids[i], errs[i] = fanoutPlace(token, m.sys.RouterURL, products[i%len(products)], fmt.Sprintf("fanout-%d-%d", stamp, i))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return ids, owners
}

func fanoutPlace(token, routerURL, product, key string) (string, error) {
	ctx := context.Background()
	in := map[string]any{
		"lines":           []any{map[string]any{"productId": product, "quantity": 1}},
		"shippingAddress": map[string]any{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
		"paymentToken":    "tok_visa",
		"idempotencyKey":  key,
	}
	var id string
	// The order service learns of new products from events: retry while it
	// has not heard of this one yet.
	for attempt := 0; id == ""; attempt++ {
		var out struct {
			PlaceOrder struct {
				Order      *struct{ ID string }
				UserErrors []userError
			}
		}
		if err := call(ctx, routerURL, token, placeOrder, map[string]any{"in": in}, &out); err != nil {
			return "", fmt.Errorf("placeOrder: %w", err)
		}
		if o := out.PlaceOrder.Order; o != nil {
			id = o.ID
			break
		}
		if ue := out.PlaceOrder.UserErrors; attempt > 100 || len(ue) == 0 || ue[0].Code != "NOT_FOUND" {
			return "", fmt.Errorf("placeOrder: %+v", ue)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var out struct{ Order *struct{ Status string } }
		if err := call(ctx, routerURL, token, `query($id: ID!) { order(id: $id) { status } }`, map[string]any{"id": id}, &out); err != nil {
			return "", fmt.Errorf("order %s: %w", id, err)
		}
		switch out.Order.Status {
		case "CONFIRMED":
			return id, nil
		case "CANCELLED":
			return "", fmt.Errorf("order %s: cancelled", id)
		}
	}
	return "", fmt.Errorf("order %s: not confirmed within 30s", id)
}

func (r fanoutRun) report(b *testing.B) {
	b.ReportMetric(float64(r.connected), "subscribers")
	b.ReportMetric(r.connect.Seconds(), "connect-s")
	b.ReportMetric(float64(r.upstream), "upstream-ws")
	b.ReportMetric(float64(r.recv), "msgs")
	b.ReportMetric(float64(r.completed), "completed")
	b.ReportMetric(float64(r.repeats), "repeats")
	b.ReportMetric(percentile(r.latency, 0.50), "p50-ms")
	b.ReportMetric(percentile(r.latency, 0.99), "p99-ms")
	b.ReportMetric(percentile(r.latency, 1), "max-ms")
	b.ReportMetric(percentile(r.fromPublish, 0.50), "publish-p50-ms")
	b.ReportMetric(fanoutMiB(r.rssOpen), "router-MiB")
	b.ReportMetric(fanoutMiB(r.rssPeak), "router-peak-MiB")
	b.Logf("K=%d: SHIPPED p50 %.1f p99 %.1f ms, DELIVERED p50 %.1f p99 %.1f ms", r.k,
		percentile(r.byStatus[1], 0.5), percentile(r.byStatus[1], 0.99), percentile(r.byStatus[2], 0.5), percentile(r.byStatus[2], 0.99))
	b.Logf("K=%d: %d subscribers got the current status first (one per upstream subscription); "+
		"router %d fds; benchmark %d fds, %d goroutines; router RSS %.0f → %.0f MiB, peak %.0f MiB",
		r.k, r.firstConfirmed, r.routerFDs, r.benchFDs, r.benchGoroutine, fanoutMiB(r.rssBefore), fanoutMiB(r.rssOpen), fanoutMiB(r.rssPeak))
}

func (r fanoutRun) row() []string {
	perSub := "—"
	if r.connected > 0 {
		perSub = fmt.Sprintf("%.1f", float64(r.rssOpen-r.rssBefore)/1024/float64(r.connected))
	}
	return []string{
		fmt.Sprintf("%d", r.k),
		fmt.Sprintf("%d", r.connected),
		fmt.Sprintf("%.1f", r.connect.Seconds()),
		fmt.Sprintf("%d", r.upstream),
		fmt.Sprintf("%d / %d", r.recv, r.expected),
		fmt.Sprintf("%d", r.completed),
		fmt.Sprintf("%d", r.repeats),
		fmt.Sprintf("%.1f", percentile(r.latency, 0.50)),
		fmt.Sprintf("%.1f", percentile(r.latency, 0.99)),
		fmt.Sprintf("%.1f", percentile(r.latency, 1)),
		fmt.Sprintf("%.1f", percentile(r.fromPublish, 0.50)),
		fmt.Sprintf("%.0f / %.0f / %.0f", fanoutMiB(r.rssBefore), fanoutMiB(r.rssOpen), fanoutMiB(r.rssPeak)),
		perSub,
	}
}

func fanoutMiB(n int64) float64 { return float64(n) / (1 << 20) }

func fanoutPort(b *testing.B, rawURL string) int {
	b.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		b.Fatal(err)
	}
	var p int
	if _, err := fmt.Sscan(u.Port(), &p); err != nil {
		b.Fatalf("%s: no port", rawURL)
	}
	return p
}
