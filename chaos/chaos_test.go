package chaos_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/testkit/clustertest"
	"github.com/onlinemart/mart/testkit/shopper"
)

// round is the shape of one run.
type round struct {
	load      time.Duration // how long the order load and the faults last
	customers int
	gap       [2]time.Duration // pause between faults, min and max
	drain     time.Duration    // how long the system may take to settle after
}

var (
	shortRound = round{load: 75 * time.Second, customers: 4, gap: [2]time.Duration{2 * time.Second, 4 * time.Second}, drain: 3 * time.Minute}
	longRound  = round{load: 6 * time.Minute, customers: 8, gap: [2]time.Duration{3 * time.Second, 10 * time.Second}, drain: 5 * time.Minute}
)

const password = "chaos-password-1"

// TestChaos runs the system as separate processes under an order load
// while faults are injected (see faults_test.go), then checks the books.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection takes minutes")
	}
	r := shortRound
	if os.Getenv("MART_CHAOS") == "1" {
		r = longRound
	}
	if d, err := time.ParseDuration(os.Getenv("MART_CHAOS_DURATION")); err == nil && d > 0 {
		r.load = d
	}
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("MART_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (MART_CHAOS_SEED replays the schedule), load %v", seed, r.load)
	began := time.Now()

	var external []string
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		external = strings.Split(b, ",")
	}
	c := clustertest.Start(t, clustertest.Options{
		Replicas: 1, Routers: 1, PrivatePostgres: true, PersistentBroker: len(external) == 0, Brokers: external,
		// Crashes are the point: keep the logs that explain recoveries.
		Env: map[string]string{"MART_LOG_LEVEL": "info"},
	})
	t.Logf("cluster up in %v; artifacts in %s", time.Since(began).Round(time.Second), c.Artifacts)
	ctx := context.Background()
	url := c.Group(clustertest.RouterGroup).URL

	shop := setUpShop(ctx, t, url, r.customers)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	loadCtx, stopLoad := context.WithCancel(ctx)
	drv := startDriver(loadCtx, url, shop, rand.New(rand.NewPCG(uint64(seed), 1)))
	inj := newInjector(t, c, rng, r)
	dup := startDuplicator(loadCtx, t, c, rand.New(rand.NewPCG(uint64(seed), 2)))
	watchCtx, stopWatch := context.WithCancel(ctx)
	inboxes := watchInbox(watchCtx, c, inbox.OutcomeDuplicate, inbox.OutcomeFailed)
	inj.run(loadCtx, r.load)
	stopLoad()
	drv.wg.Wait()
	dup.wait()
	loadEnded := time.Now()

	// Settle: everything accepted reaches a resting state and every queue
	// empties, by the system's own means.
	accepted := drv.accepted()
	var books clustertest.Books
	deadline := time.Now().Add(r.drain)
	for {
		var err error
		books, err = c.CheckBooks(ctx, accepted)
		if err == nil && books.Settled() {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not settled %v after the load: %v", r.drain, err)
			break
		}
		time.Sleep(2 * time.Second)
	}
	drained := time.Since(loadEnded)
	time.Sleep(time.Second) // a last sample of the counters
	stopWatch()
	dups := dup.summary()
	dups.recognised, dups.retried = inboxes.get(inbox.OutcomeDuplicate), inboxes.get(inbox.OutcomeFailed)

	report := figures(seed, r, time.Since(began), drained, drv.summary(), inj.summary(), dups, books)
	t.Log("\n" + report)
	if err := os.WriteFile(filepath.Join(c.Artifacts, "figures.md"), []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	for _, name := range sortedKeys(books.Violations()) {
		if n := books.Violations()[name]; n != 0 {
			t.Errorf("%s: %d", name, n)
		}
	}
	for _, e := range books.Examples {
		t.Log("  " + e)
	}
	if len(accepted) == 0 || books.ByStatus["CONFIRMED"] == 0 {
		t.Errorf("no order went through: %d accepted, %v", len(accepted), books.ByStatus)
	}
	for _, f := range inj.failures {
		t.Error(f)
	}
}

// shop is the catalog and the customers of a run.
type shop struct {
	plenty, scarce []string // product ids
	customers      []customer
}

type customer struct{ id, token string }

func setUpShop(ctx context.Context, t *testing.T, url string, customers int) shop {
	t.Helper()
	admin, code, err := shopper.Login(ctx, url, clustertest.AdminEmail, clustertest.AdminPassword)
	if err != nil || admin == "" {
		t.Fatalf("admin login: %v %s", err, code)
	}
	var s shop
	run := time.Now().UnixNano()
	for i := range 4 {
		id, err := shopper.CreateProduct(ctx, url, admin, fmt.Sprintf("CHAOS-%d-P%d", run, i), int64(250+i), 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		s.plenty = append(s.plenty, id)
	}
	// Scarce products run out during the round: orders for them race
	// for the last units and some are refused by inventory.
	for i := range 2 {
		id, err := shopper.CreateProduct(ctx, url, admin, fmt.Sprintf("CHAOS-%d-S%d", run, i), int64(900+i), 6)
		if err != nil {
			t.Fatal(err)
		}
		s.scarce = append(s.scarce, id)
	}
	for i := range customers {
		id, tok, err := shopper.Register(ctx, url, fmt.Sprintf("chaos-%d-%d@example.com", run, i), password, "Chaos Customer")
		if err != nil {
			t.Fatal(err)
		}
		s.customers = append(s.customers, customer{id: id, token: tok})
	}
	return s
}

// driver is the order load: each customer places an order of a random
// kind, follows it until it settles (or gives up following; the books
// check it later), and starts the next.
type driver struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	orders  map[string]string // id → kind
	kinds   map[string]int    // orders placed by kind
	refused int               // placeOrder answered with user errors
	errors  int               // requests that failed (transport, 5xx); retried
	byError map[string]int    // of those, by message (addresses and ids elided)
	latency []time.Duration   // place → settled, as the customer saw it
	unseen  int               // orders the customer stopped following before they settled
}

// The kinds of order the driver places, with their weights.
var kinds = []struct {
	name   string
	weight int
}{
	{"paid", 55},             // plentiful product, card accepted → CONFIRMED
	{"declined", 10},         // card declined → CANCELLED, nothing charged
	{"scarce", 10},           // racing for the last units → CONFIRMED or OUT_OF_STOCK
	{"cancel-early", 10},     // cancelled right after placing, racing the saga
	{"cancel-confirmed", 15}, // cancelled once confirmed → refund and restock
}

func pick(rng *rand.Rand) string {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := rng.IntN(total)
	for _, k := range kinds {
		if n < k.weight {
			return k.name
		}
		n -= k.weight
	}
	return kinds[0].name
}

func startDriver(ctx context.Context, url string, s shop, rng *rand.Rand) *driver {
	d := &driver{orders: map[string]string{}, kinds: map[string]int{}, byError: map[string]int{}}
	for i, cu := range s.customers {
		// Each customer its own generator: rand.Rand is not safe for
		// concurrent use.
		crng := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
		d.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				d.order(ctx, url, s, cu, crng, fmt.Sprintf("chaos-%s-%d", cu.id, n))
			}
		})
	}
	return d
}

func (d *driver) failed(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errors++
	msg := elide.ReplaceAllString(err.Error(), "…")
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	d.byError[msg]++
}

func (d *driver) order(ctx context.Context, url string, s shop, cu customer, rng *rand.Rand, key string) {
	kind := pick(rng)
	o := shopper.Order{Product: s.plenty[rng.IntN(len(s.plenty))], Quantity: 1 + rng.IntN(3), Key: key}
	switch kind {
	case "declined":
		o.PaymentToken = "tok_chargeDeclined"
	case "scarce":
		o.Product, o.Quantity = s.scarce[rng.IntN(len(s.scarce))], 1+rng.IntN(2)
	}
	began := time.Now()
	id, uerrs, err := shopper.PlaceOrder(ctx, url, cu.token, o, d.failed)
	if err != nil {
		if len(uerrs) > 0 {
			d.mu.Lock()
			d.refused++
			d.mu.Unlock()
		} else if ctx.Err() == nil {
			d.failed(err)
			time.Sleep(time.Second)
		}
		return
	}
	d.mu.Lock()
	d.orders[id] = kind
	d.kinds[kind]++
	d.mu.Unlock()

	if kind == "cancel-early" {
		d.cancel(ctx, url, cu.token, id)
	}
	status := shopper.Follow(ctx, url, cu.token, id, 45*time.Second, d.failed)
	if kind == "cancel-confirmed" && status == "CONFIRMED" {
		d.cancel(ctx, url, cu.token, id)
		status = shopper.Follow(ctx, url, cu.token, id, 45*time.Second, d.failed)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if status == "" {
		d.unseen++
		return
	}
	d.latency = append(d.latency, time.Since(began))
}

// cancel asks to cancel, retrying through transport errors a few times.
func (d *driver) cancel(ctx context.Context, url, token, id string) {
	for range 10 {
		_, _, err := shopper.CancelOrder(ctx, url, token, id)
		if err == nil || ctx.Err() != nil {
			return
		}
		d.failed(err)
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *driver) accepted() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Collect(maps.Keys(d.orders))
}

// elide matches what differs between otherwise equal errors.
var elide = regexp.MustCompile(`127\.0\.0\.1:\d+|[0-9a-f]{8}-[0-9a-f-]{27}|"http://[^"]*"`)

// driverSummary is what the customers saw.
type driverSummary struct {
	accepted, refused, errors, unseen int
	byError                           map[string]int
	kinds                             map[string]int
	p50, p99, max                     time.Duration
}

func (d *driver) summary() driverSummary {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := driverSummary{accepted: len(d.orders), refused: d.refused, errors: d.errors, unseen: d.unseen, byError: maps.Clone(d.byError), kinds: maps.Clone(d.kinds)}
	if n := len(d.latency); n > 0 {
		l := slices.Clone(d.latency)
		slices.Sort(l)
		s.p50, s.p99, s.max = l[n/2], l[min(n-1, n*99/100)], l[n-1]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// figures renders a round as Markdown (docs/reliability.md carries the
// last long round's).
func figures(seed int64, r round, total, drained time.Duration, d driverSummary, inj []faultCount, dup dupSummary, b clustertest.Books) string {
	var s strings.Builder
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	fmt.Fprintf(&s, "Round: %v of load and faults, seed %d, %d customers; drained %s after the load; %s in all.\n\n",
		r.load, seed, r.customers, ms(drained), total.Round(time.Second))
	fmt.Fprintf(&s, "| Fault | Times | Recovered in (max) |\n|---|---:|---:|\n")
	for _, f := range inj {
		fmt.Fprintf(&s, "| %s | %d | %s |\n", f.kind, f.times, ms(f.worst))
	}
	fmt.Fprintf(&s, "| events delivered again (immediately / 2–10 s late) | %d / %d | |\n\n", dup.now, dup.late)
	fmt.Fprintf(&s, "The consumers skipped %d deliveries as already handled (the copies above, and redeliveries after crashes and rebalances) and retried %d handler attempts that failed (mostly while Postgres was down).\n\n", dup.recognised, dup.retried)
	var kinds []string
	for _, k := range sortedKeys(d.kinds) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, d.kinds[k]))
	}
	fmt.Fprintf(&s, "Load: %d orders accepted (%s), %d refused; placed → settled as the customer saw it: p50 %s, p99 %s, max %s; %d not seen settled while following (checked below).\n\n",
		d.accepted, strings.Join(kinds, ", "), d.refused, ms(d.p50), ms(d.p99), ms(d.max), d.unseen)
	fmt.Fprintf(&s, "Requests that failed during the faults (the clients retried them): %d\n\n| Error | Times |\n|---|---:|\n", d.errors)
	errs := sortedKeys(d.byError)
	slices.SortStableFunc(errs, func(a, b string) int { return d.byError[b] - d.byError[a] })
	for _, e := range errs {
		fmt.Fprintf(&s, "| `%s` | %d |\n", strings.ReplaceAll(e, "|", "\\|"), d.byError[e])
	}
	s.WriteString("\n")
	var st []string
	for _, k := range sortedKeys(b.ByStatus) {
		st = append(st, fmt.Sprintf("%s %d", k, b.ByStatus[k]))
	}
	fmt.Fprintf(&s, "The books after the drain: %d orders (%s); %d charges, %d refunds; %d products; %d order notifications.\n\n",
		b.Orders, strings.Join(st, ", "), b.Charges, b.Refunds, b.Products, b.Notifications)
	fmt.Fprintf(&s, "| Invariant violated | Count |\n|---|---:|\n")
	v := b.Violations()
	for _, k := range sortedKeys(v) {
		fmt.Fprintf(&s, "| %s | %d |\n", k, v[k])
	}
	for _, w := range b.DeadLetterWhy {
		fmt.Fprintf(&s, "\nDead letter: %s", w)
	}
	return s.String()
}
