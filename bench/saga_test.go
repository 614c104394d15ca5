package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// Customers placing orders at once in BenchmarkSaga.
const sagaCustomers = 16

// How often a customer polls the order it is following. Latency is taken
// from the order's own history (server timestamps), so this only adds idle
// time between a customer's orders, not to the measured latency.
const sagaPoll = 50 * time.Millisecond

const placeOrder = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { order { id } userErrors { field message code } } }`

const followOrder = `query($id: ID!) { order(id: $id) { status history { status at } } }`

// BenchmarkSaga measures the order saga end to end: placeOrder through the
// router until the order is CONFIRMED (stock reserved by inventory, charged
// by payment, each step an event through the outbox, Kafka and an inbox).
// One op is one order; b.N orders are placed per run (use -benchtime=Nx).
//
//	pgcommit  the Postgres commit ceiling of this machine (pgbench-like)
//	cost      Postgres transactions per order in each service's database,
//	          measured once (costOrders orders) before max; skipped
//	          with -short
//	max       sagaCustomers customers, each placing its next order as soon
//	          as the previous one is settled
//	half      the same customers paced by a ticker to half the rate max
//	          measured in this run
//
// Metrics: orders/s (confirmed per second of wall time), p50-ms and p99-ms
// (place → CONFIRMED, from the order's history), reserve-p50-ms and
// pay-p50-ms (its two steps: to AWAITING_PAYMENT, then to CONFIRMED), errors (failed requests,
// orders not confirmed within 30s or cancelled), orders/commit (orders/s
// ÷ the commit ceiling).
func BenchmarkSaga(b *testing.B) {
	ceiling := commitCeiling(b)
	m := startMart(b)
	products := m.products(b, "SAGA", 4, 1_000_000)
	tokens := m.customers(b, sagaCustomers)
	// Warm up: the order service learns of the products from events, and
	// the first order of each customer warms connections and caches.
	warm := runOrders(b, m.sys.RouterURL, products, tokens, len(tokens), 0)
	if warm.confirmed == 0 {
		b.Fatalf("warm-up: no order confirmed (%d errors: %v)", warm.errors, warm.firstErr)
	}

	var cost orderCost
	if !testing.Short() { // it waits for Postgres' statistics three times (~35s)
		cost = measureOrderCost(b, m, products, tokens)
		b.Logf("one order: %v", cost)
	}

	b.Run("pgcommit", func(b *testing.B) {
		b.ReportMetric(ceiling, "commits/s")
	})
	b.Run("cost", func(b *testing.B) {
		if cost.services == nil {
			b.Skip("not measured with -short")
		}
		for _, s := range cost.services {
			b.ReportMetric(cost.xacts[s], s+"-xacts/order")
		}
		b.ReportMetric(cost.totalXacts(), "xacts/order")
		b.ReportMetric(cost.polls, "polls/order")
	})
	var maxR, halfR sagaResult
	b.Run("max", func(b *testing.B) {
		maxR = runOrders(b, m.sys.RouterURL, products, tokens, b.N, 0)
		maxR.report(b, ceiling)
	})
	b.Run("half", func(b *testing.B) {
		if maxR.rate() == 0 {
			b.Skip("max measured no rate")
		}
		halfR = runOrders(b, m.sys.RouterURL, products, tokens, b.N, maxR.rate()/2)
		halfR.report(b, ceiling)
		b.ReportMetric(maxR.rate()/2, "target-orders/s")
	})

	row := func(name string, r sagaResult) []string {
		return []string{name, f1(r.rate()), f0(percentile(r.latencies, 0.50)), f0(percentile(r.latencies, 0.99)),
			f0(percentile(r.reserve, 0.50)), f0(percentile(r.pay, 0.50)), fmt.Sprint(r.errors), fmt.Sprintf("%.4f", r.rate()/ceiling)}
	}
	writeTable(b, "10-saga", table{
		Title: "Order saga",
		Intro: fmt.Sprintf("`BenchmarkSaga`: %d orders per run by %d customers (one unit, `tok_visa`), place → CONFIRMED. "+
			"Postgres commit ceiling in the same run: **%.0f commits/s** (16 connections, one-row `INSERT` + `COMMIT`).",
			maxR.confirmed+maxR.errors, len(tokens), ceiling),
		Header: []string{"run", "orders/s", "p50 ms", "p99 ms", "reserve p50 ms", "pay p50 ms", "errors", "orders/s ÷ commits/s"},
		Rows:   [][]string{row("`max` (closed loop)", maxR), row(fmt.Sprintf("`half` (ticker at %.1f/s)", maxR.rate()/2), halfR)},
	})
	if cost.services != nil {
		var rows [][]string
		for _, s := range cost.services {
			rows = append(rows, []string{s, f1(cost.xacts[s]), f1(cost.written[s])})
		}
		rows = append(rows, []string{"all", f1(cost.totalXacts()), ""})
		writeTable(b, "11-saga-cost", table{
			Title:  "What one order costs in Postgres",
			Intro:  fmt.Sprintf("100 orders, `pg_stat_database` before and after, net of the idle background; %.1f of the transactions are the benchmark's own `order(id)` polls.", cost.polls),
			Header: []string{"database", "transactions/order", "rows written/order"},
			Rows:   rows,
		})
	}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

type sagaResult struct {
	confirmed int
	errors    int
	firstErr  error
	latencies []time.Duration
	reserve   []time.Duration // PENDING → AWAITING_PAYMENT
	pay       []time.Duration // AWAITING_PAYMENT → CONFIRMED
	polls     int             // order(id) queries while following
	wall      time.Duration
}

func (r sagaResult) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.confirmed) / r.wall.Seconds()
}

func (r sagaResult) report(b *testing.B, ceiling float64) {
	b.Helper()
	if r.firstErr != nil {
		b.Logf("%d errors, the first: %v", r.errors, r.firstErr)
	}
	b.ReportMetric(r.rate(), "orders/s")
	b.ReportMetric(percentile(r.latencies, 0.50), "p50-ms")
	b.ReportMetric(percentile(r.latencies, 0.99), "p99-ms")
	b.ReportMetric(percentile(r.reserve, 0.50), "reserve-p50-ms")
	b.ReportMetric(percentile(r.pay, 0.50), "pay-p50-ms")
	b.ReportMetric(float64(r.errors), "errors")
	if ceiling > 0 {
		b.ReportMetric(r.rate()/ceiling, "orders/commit")
	}
}

// percentile returns the q-quantile of ds in milliseconds (nearest rank).
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(i, 0)].Microseconds()) / 1000
}

// runOrders places n orders of one unit of one of products, spread over
// the customers (tokens), each customer following its order until it is
// settled before placing the next. With rate > 0 a ticker hands out the
// orders at that rate; otherwise customers go as fast as they can.
func runOrders(b *testing.B, url string, products, tokens []string, n int, rate float64) sagaResult {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tickets := orderTickets(ctx, n, rate)

	var tally sagaTally
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for c, token := range tokens {
		wg.Go(func() {
			for i := range tickets {
				tally.add(placeAndFollow(ctx, url, token, products[(c+i)%len(products)], fmt.Sprintf("bench-%d-%d-%d", start.UnixNano(), c, i)))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	res := tally.res
	if tally.lastConfirmed > 0 {
		res.wall = time.Unix(0, tally.lastConfirmed).Sub(start)
	}
	return res
}

// orderTickets hands out the orders' numbers, 0 to n-1, one to each
// customer that asks: at rate a second with rate > 0, otherwise as fast
// as they are taken. The channel closes after the last or when ctx ends.
func orderTickets(ctx context.Context, n int, rate float64) <-chan int {
	tickets := make(chan int)
	go func() {
		defer close(tickets)
		var tick <-chan time.Time
		if rate > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer t.Stop()
			tick = t.C
		}
		for i := range n {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
			select {
			case tickets <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return tickets
}

// sagaTally adds up the customers' orders as they settle.
type sagaTally struct {
	mu            sync.Mutex
	res           sagaResult
	lastConfirmed int64 // unix nanos
}

// add counts one order's polls and its steps, or its error.
func (t *sagaTally) add(st steps, polls int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.polls += polls
	if err != nil {
		t.res.errors++
		if t.res.firstErr == nil {
			t.res.firstErr = err
		}
		return
	}
	t.res.confirmed++
	t.res.latencies = append(t.res.latencies, st.total)
	t.res.reserve = append(t.res.reserve, st.reserve)
	t.res.pay = append(t.res.pay, st.pay)
	t.lastConfirmed = max(t.lastConfirmed, time.Now().UnixNano())
}

// steps are the durations of one order's saga, by its history.
type steps struct {
	total   time.Duration // PENDING → CONFIRMED
	reserve time.Duration // PENDING → AWAITING_PAYMENT: OrderPlaced to inventory, StockReserved back
	pay     time.Duration // AWAITING_PAYMENT → CONFIRMED: the charge, PaymentSucceeded back
}

// placeAndFollow places one order and polls it until it is settled; it
// returns the durations of its steps by the order's history, and how many
// times it polled.
func placeAndFollow(ctx context.Context, url, token, product, key string) (st steps, polls int, err error) {
	in := map[string]any{
		"lines":           []any{map[string]any{"productId": product, "quantity": 1}},
		"shippingAddress": map[string]any{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
		"paymentToken":    "tok_visa",
		"idempotencyKey":  key,
	}
	var placed struct {
		PlaceOrder struct {
			Order      *struct{ ID string }
			UserErrors []userError
		}
	}
	// The order service learns of new products from events: retry while it
	// has not heard of this one yet.
	for attempt := 0; ; attempt++ {
		placed.PlaceOrder.Order, placed.PlaceOrder.UserErrors = nil, nil
		if err := call(ctx, url, token, placeOrder, map[string]any{"in": in}, &placed); err != nil {
			return st, polls, fmt.Errorf("placeOrder: %w", err)
		}
		if placed.PlaceOrder.Order != nil {
			break
		}
		if attempt > 100 || len(placed.PlaceOrder.UserErrors) == 0 || placed.PlaceOrder.UserErrors[0].Code != "NOT_FOUND" {
			return st, polls, fmt.Errorf("placeOrder: %+v", placed.PlaceOrder.UserErrors)
		}
		time.Sleep(100 * time.Millisecond)
	}
	id := placed.PlaceOrder.Order.ID
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(sagaPoll)
		polls++
		var out struct {
			Order *struct {
				Status  string
				History []struct {
					Status string
					At     time.Time
				}
			}
		}
		if err := call(ctx, url, token, followOrder, map[string]any{"id": id}, &out); err != nil {
			return st, polls, fmt.Errorf("order %s: %w", id, err)
		}
		if out.Order == nil {
			return st, polls, fmt.Errorf("order %s: not found", id)
		}
		switch out.Order.Status {
		case "CONFIRMED", "SHIPPED", "DELIVERED":
			h := out.Order.History
			at := map[string]time.Time{}
			for _, e := range h {
				at[e.Status] = e.At
			}
			if c, ok := at["CONFIRMED"]; ok && len(h) > 0 {
				st.total = c.Sub(h[0].At)
				if a, ok := at["AWAITING_PAYMENT"]; ok {
					st.reserve, st.pay = a.Sub(h[0].At), c.Sub(a)
				}
				return st, polls, nil
			}
			return st, polls, fmt.Errorf("order %s: CONFIRMED without history: %+v", id, h)
		case "CANCELLED":
			return st, polls, fmt.Errorf("order %s: cancelled", id)
		}
	}
	return st, polls, fmt.Errorf("order %s: not confirmed within 30s", id)
}
