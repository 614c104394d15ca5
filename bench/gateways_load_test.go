package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadResult is what one or more runs of runLoad measured.
type loadResult struct {
	ok, errors int
	firstErr   string
	latencies  []time.Duration // of the successful requests
	wall       time.Duration
}

func (r loadResult) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.ok) / r.wall.Seconds()
}

func (r *loadResult) add(o loadResult) {
	r.ok += o.ok
	r.errors += o.errors
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.latencies = append(r.latencies, o.latencies...)
	r.wall += o.wall
}

// runLoad is a closed-loop load generator: workers goroutines, each
// sending query to url again as soon as its previous response is read, for
// d. It is hand-written rather than vegeta's, whose attacker paces
// requests at a rate (open loop); a fixed number of requests in flight is
// what "concurrency 16 and 64" means here. With tokens, request i of a
// worker goes as customer tokens[(worker+i*workers) % len(tokens)].
// A response is an error unless it is 200 without "errors".
func runLoad(url, query string, tokens []string, workers int, d time.Duration) loadResult {
	body, _ := json.Marshal(map[string]any{"query": query})
	var mu sync.Mutex
	var total loadResult
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var r loadResult
			for i := 0; time.Now().Before(deadline); i++ {
				token := ""
				if len(tokens) > 0 {
					token = tokens[(w+i*workers)%len(tokens)]
				}
				t0 := time.Now()
				err := send(url, token, body)
				if err != nil {
					r.errors++
					if r.firstErr == "" {
						r.firstErr = err.Error()
					}
					continue
				}
				r.ok++
				r.latencies = append(r.latencies, time.Since(t0))
			}
			mu.Lock()
			total.add(r)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.wall = time.Since(start)
	return total
}

func send(url, token string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || bytes.Contains(raw, []byte(`"errors"`)):
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, raw)
	}
	return nil
}

// showTable is writeTable, also printed to stdout unless -v: a parent
// benchmark's log is shown only with -v, and a sub-benchmark's is cut to
// ten lines.
func showTable(b *testing.B, name string, t table) {
	b.Helper()
	writeTable(b, name, t)
	if !testing.Verbose() {
		fmt.Println(t.markdown())
	}
}

// reportGateways writes the results as three tables: every measurement,
// ours ÷ each peer, and memory.
func reportGateways(b *testing.B, plan gatewayPlan, gateways []*process, results map[string]*loadResult, idle, peak map[string]int64, notes []string) {
	b.Helper()
	f1 := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	var about []string
	for _, q := range gatewayQueries {
		about = append(about, fmt.Sprintf("(%s) %s", q.name, q.about))
	}
	var names []string
	for _, g := range gateways {
		names = append(names, g.Name)
	}
	setup := fmt.Sprintf("%d products with stock, %d customers with %d confirmed orders each; %d round(s) of %v per gateway, query and concurrency, gateways in turn (%s), after a %v warm-up each",
		plan.products, plan.customers, plan.ordersEach, plan.rounds, plan.measure, strings.Join(names, ", "), plan.warm)

	var rows [][]string
	for _, q := range gatewayQueries {
		for _, c := range plan.concurrency {
			for _, name := range append(names, "direct") {
				r := results[resultKey(name, q.name, c)]
				if r == nil {
					continue
				}
				label := name
				if name == "direct" {
					label = "direct to the " + q.direct + " subgraph"
				}
				rows = append(rows, []string{q.name, fmt.Sprint(c), label, fmt.Sprintf("%.0f", r.rate()),
					f1(percentile(r.latencies, 0.50)), f1(percentile(r.latencies, 0.99)), fmt.Sprint(r.errors)})
			}
		}
	}
	showTable(b, "20-gateways", table{
		Title: "Router vs peer gateways",
		Intro: "`BenchmarkGateways`: the same six subgraphs behind our router, Hive Gateway and Apollo Gateway, each its own process. " +
			"Queries: " + strings.Join(about, "; ") + ". " + setup + ". " +
			"Closed loop: *c* requests in flight. req/s counts successful responses (higher is better); latencies in ms.",
		Header: []string{"query", "c", "gateway", "req/s", "p50 ms", "p99 ms", "errors"},
		Rows:   rows,
	})

	// Ratios: ours ÷ peer. For req/s above 1 means ours is faster; for
	// latency below 1 does.
	rows = nil
	ratio := func(x, y float64) string {
		if y == 0 {
			return "—"
		}
		return f2(x / y)
	}
	for _, q := range gatewayQueries {
		for _, c := range plan.concurrency {
			o := results[resultKey("ours", q.name, c)]
			for _, peer := range append(names[1:], "direct") {
				p := results[resultKey(peer, q.name, c)]
				if p == nil {
					continue
				}
				rows = append(rows, []string{q.name, fmt.Sprint(c), "ours ÷ " + peer,
					ratio(o.rate(), p.rate()),
					ratio(percentile(o.latencies, 0.50), percentile(p.latencies, 0.50)),
					ratio(percentile(o.latencies, 0.99), percentile(p.latencies, 0.99))})
			}
		}
	}
	showTable(b, "21-gateways-ratios", table{
		Title:  "Router vs peer gateways: ours ÷ peer",
		Intro:  "The rows above as ratios, ours ÷ the other. req/s: higher is better for us (above 1, ours serves more). p50 and p99: lower is better for us (below 1, ours answers sooner). *ours ÷ direct* is the router's cost: the share of the product subgraph's own throughput left when going through the router.",
		Header: []string{"query", "c", "ratio", "req/s", "p50", "p99"},
		Rows:   rows,
	})

	rows = nil
	for _, name := range names {
		rows = append(rows, []string{name, fmt.Sprintf("%.0f", mib(idle[name])), fmt.Sprintf("%.0f", mib(peak[name]))})
	}
	showTable(b, "22-gateways-memory", table{
		Title:  "Router vs peer gateways: memory",
		Intro:  "Resident memory of each gateway process: after start (loaded supergraph, before any query) and the peak over the whole run (VmHWM).",
		Header: []string{"gateway", "RSS at start MiB", "peak RSS MiB"},
		Rows:   rows,
		Notes:  strings.Join(notes, "\n\n"),
	})
}
