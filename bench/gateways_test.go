package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/onlinemart/mart/testkit/clustertest"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// The queries of BenchmarkGateways. Each is sent as is (no variables), so
// every gateway parses the same text.
var gatewayQueries = []gatewayQuery{
	{name: "a", about: "`products(first: 50)`, product subgraph only", direct: "product",
		query: `{ products(first: 50) { edges { node { id sku name price { amount currency } category active } } pageInfo { hasNextPage endCursor } } }`},
	{name: "b", about: "catalog page with `stock { available }` (product + inventory)",
		query: `{ products(first: 50) { edges { node { id sku name price { amount currency } stock { available inStock } } } } }`},
	{name: "c", about: "a customer's orders with lines, products and payment (user + order + product + payment, authenticated)", auth: true,
		query: `{ me { id orders(first: 10) { edges { node { id status total { amount currency } lines { quantity lineTotal { amount currency } product { id name price { amount currency } } } payment { status provider amount { amount currency } } } } } } }`},
}

type gatewayQuery struct {
	name, about, query string
	auth               bool   // sent with a customer's token
	direct             string // the subgraph that can answer it alone, if any
}

// gatewayPlan is how much BenchmarkGateways seeds and measures.
type gatewayPlan struct {
	products, customers, ordersEach int
	rounds                          int
	measure, warm                   time.Duration
	concurrency                     []int
}

func planGateways() gatewayPlan {
	if testing.Short() {
		return gatewayPlan{products: 100, customers: 16, ordersEach: 3, rounds: 1,
			measure: 2 * time.Second, warm: 500 * time.Millisecond, concurrency: []int{16}}
	}
	return gatewayPlan{products: 1000, customers: 200, ordersEach: 3, rounds: 3,
		measure: 4 * time.Second, warm: 2 * time.Second, concurrency: []int{16, 64}}
}

// BenchmarkGateways compares our router with two peer federation gateways,
// Hive Gateway and Apollo Gateway (bench/peers, run with node), in front of
// the same six subgraphs started once with seeded data. Each gateway runs
// as its own process on its own port; the peers get a supergraph composed
// by @theguild/federation-composition from the same schema files our
// router composes. Before measuring, every gateway must answer every query
// with the same data and no errors.
//
// Each measurement is a closed loop: c workers, each sending its next
// request when the previous one has returned, for a fixed time. Gateways
// take turns (ours, hive, apollo, ours, …) for every query and
// concurrency, for several rounds, so drift on the machine is shared.
// Query (a) is also sent to the product subgraph directly, which gives the
// router's overhead.
//
// The parent runs once; its sub-benchmarks only report what it measured
// (req/s, p50-ms, p99-ms, errors, peak-rss-MiB), and the tables go to
// the report as 20-gateways*.
func BenchmarkGateways(b *testing.B) {
	plan := planGateways()
	sys := systemtest.StartWith(b, map[string]string{"MART_ACCESS_TOKEN_TTL": "2h"}, // outlive the run
		"user", "product", "order", "inventory", "payment", "notification")
	ours := startRouter(b, sys)
	ours.Name = "ours"
	m := &mart{sys: sys, admin: sys.Login(b, systemtest.AdminEmail, systemtest.AdminPassword)}

	var notes []string // for the report: a parent benchmark's log is only shown with -v
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	start := time.Now()
	tokens := seedGateways(b, m, plan)
	note("Seeded in %v.", time.Since(start).Round(time.Second))

	started, skipped := startPeers(b, sys)
	notes = append(notes, skipped...)
	gateways := append([]*process{ours}, started...)
	idle := map[string]int64{}
	for _, g := range gateways {
		idle[g.Name] = g.RSS()
	}
	checkSameAnswers(b, sys, gateways, tokens[0])

	run := gatewayRun{plan: plan, gateways: gateways, services: sys.Services, tokens: tokens}
	run.warm()
	load0 := loadAverage()
	start = time.Now()
	results := run.measure(note)

	// Everything shares the machine's cores: a load far above what this
	// benchmark makes itself means someone else's work was measured too.
	note("Measured in %v; 1-minute load average %s before, %s after.",
		time.Since(start).Round(time.Second), load0, loadAverage())
	peak := map[string]int64{}
	for _, g := range gateways {
		peak[g.Name] = g.PeakRSS()
	}
	reportGateways(b, plan, gateways, results, idle, peak, notes)
	run.reportMetrics(b, results, peak)
}

// gatewayRun is what BenchmarkGateways measures: its plan, the gateways
// started, the subgraphs' own URLs and the customers' tokens.
type gatewayRun struct {
	plan     gatewayPlan
	gateways []*process
	services map[string]string // subgraph name → its /graphql URL
	tokens   []string
}

// gatewayTarget is where a query is sent: a gateway or a subgraph.
type gatewayTarget struct{ name, url string }

// targets of a query: every gateway, and the owning subgraph if any.
func (r gatewayRun) targets(q gatewayQuery) []gatewayTarget {
	var ts []gatewayTarget
	for _, g := range r.gateways {
		ts = append(ts, gatewayTarget{g.Name, g.URL})
	}
	if q.direct != "" {
		ts = append(ts, gatewayTarget{"direct", r.services[q.direct]})
	}
	return ts
}

// tokensFor are the tokens a query is sent with: none unless it needs
// a customer's.
func (r gatewayRun) tokensFor(q gatewayQuery) []string {
	if q.auth {
		return r.tokens
	}
	return nil
}

// warm sends every query to every target for a while, uncounted: JIT
// compilers and connection pools warm up before anything counts.
func (r gatewayRun) warm() {
	for _, q := range gatewayQueries {
		for _, t := range r.targets(q) {
			runLoad(t.url, q.query, r.tokensFor(q), r.plan.concurrency[0], r.plan.warm)
		}
	}
}

// measure runs the plan's rounds, every target taking its turn for each
// query and concurrency, and returns the results by resultKey. Requests
// that failed are noted.
func (r gatewayRun) measure(note func(format string, args ...any)) map[string]*loadResult {
	results := map[string]*loadResult{}
	for round := range r.plan.rounds {
		for _, q := range gatewayQueries {
			for _, c := range r.plan.concurrency {
				for _, t := range r.targets(q) {
					res := runLoad(t.url, q.query, r.tokensFor(q), c, r.plan.measure)
					k := resultKey(t.name, q.name, c)
					if results[k] == nil {
						results[k] = &loadResult{}
					}
					results[k].add(res)
					if res.errors > 0 {
						note("Round %d, %s: %d errors, the first: %s", round+1, k, res.errors, res.firstErr)
					}
				}
			}
		}
	}
	return results
}

// reportMetrics reports what was measured as one sub-benchmark per
// target, query and concurrency.
func (r gatewayRun) reportMetrics(b *testing.B, results map[string]*loadResult, peak map[string]int64) {
	for _, q := range gatewayQueries {
		for _, c := range r.plan.concurrency {
			for _, t := range r.targets(q) {
				res := results[resultKey(t.name, q.name, c)]
				b.Run(resultKey(t.name, q.name, c), func(b *testing.B) {
					b.ReportMetric(res.rate(), "req/s")
					b.ReportMetric(percentile(res.latencies, 0.50), "p50-ms")
					b.ReportMetric(percentile(res.latencies, 0.99), "p99-ms")
					b.ReportMetric(float64(res.errors), "errors")
					if p, ok := peak[t.name]; ok {
						b.ReportMetric(mib(p), "peak-rss-MiB")
					}
				})
			}
		}
	}
}

func resultKey(target, query string, c int) string {
	return fmt.Sprintf("%s/%s/c=%d", target, query, c)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// seedGateways creates the catalog with stock and customers whose orders
// are confirmed (so every query's answer is stable), and returns the
// customers' tokens.
func seedGateways(b *testing.B, m *mart, plan gatewayPlan) []string {
	b.Helper()
	ids := parallel(b, plan.products, 8, func(i int) (string, error) {
		var out struct {
			CreateProduct struct {
				Product    *struct{ ID string }
				UserErrors []userError
			}
		}
		sku := fmt.Sprintf("GW-%04d", i)
		in := map[string]any{"sku": sku, "name": "Gateway " + sku, "price": map[string]any{"amount": 100 + i, "currency": "USD"}}
		if err := call(context.Background(), m.sys.RouterURL, m.admin, createProduct, map[string]any{"input": in}, &out); err != nil {
			return "", err
		}
		if out.CreateProduct.Product == nil {
			return "", fmt.Errorf("createProduct %s: %+v", sku, out.CreateProduct.UserErrors)
		}
		return out.CreateProduct.Product.ID, nil
	})
	// Inventory learns of a product from its event: retry until it has.
	parallel(b, len(ids), 8, func(i int) (string, error) {
		deadline := time.Now().Add(time.Minute)
		for {
			var out struct {
				AdjustStock struct{ UserErrors []userError }
			}
			err := call(context.Background(), m.sys.RouterURL, m.admin, adjustStock, map[string]any{"id": ids[i], "n": 1000, "key": "gw-receipt-" + ids[i]}, &out)
			if err == nil && len(out.AdjustStock.UserErrors) == 0 {
				return "", nil
			}
			if time.Now().After(deadline) {
				if err != nil {
					return "", fmt.Errorf("adjustStock %s: %w", ids[i], err)
				}
				return "", fmt.Errorf("adjustStock %s: %+v", ids[i], out.AdjustStock.UserErrors)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	// Registering hashes a password (memory-hard): a few at a time, or
	// hundreds at once on 2 cores outlast the client's timeout.
	tokens := parallel(b, plan.customers, 4, func(i int) (string, error) {
		var out struct {
			Register struct {
				AccessToken *string
				UserErrors  []userError
			}
		}
		err := call(context.Background(), m.sys.RouterURL, "", `mutation($e: String!) { register(input: {email: $e, password: "customer-password", name: "Gateway Customer"}) { accessToken userErrors { field message code } } }`,
			map[string]any{"e": fmt.Sprintf("gw-%d@example.com", i)}, &out)
		if err == nil && out.Register.AccessToken == nil {
			err = fmt.Errorf("register: %+v", out.Register.UserErrors)
		}
		if err != nil {
			return "", err
		}
		return *out.Register.AccessToken, nil
	})
	// Each customer's orders, one line each, followed until CONFIRMED; 8
	// at a time, as more run the services out of Postgres connections
	// (each service's pool may open 20, the server allows 100).
	parallel(b, plan.customers*plan.ordersEach, 8, func(i int) (string, error) {
		c, n := i%plan.customers, i/plan.customers
		_, _, err := placeAndFollow(context.Background(), m.sys.RouterURL, tokens[c], ids[(c*plan.ordersEach+n)%len(ids)], fmt.Sprintf("gw-%d-%d", c, n))
		return "", err
	})
	return tokens
}

// parallel runs f(0..n-1) on workers goroutines and returns the results,
// failing the benchmark on the first error.
func parallel(b *testing.B, n, workers int, f func(i int) (string, error)) []string {
	b.Helper()
	out := make([]string, n)
	errs := make([]error, n)
	next := make(chan int)
	go func() {
		for i := range n {
			next <- i
		}
		close(next)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// A peer gateway: its script in bench/peers, the package it needs and the
// path that answers 200 once it can serve.
type peer struct{ name, script, pkg, ready string }

var peers = []peer{
	{"hive", "hive.mjs", "@graphql-hive/gateway", "/readiness"},
	{"apollo", "apollo.mjs", "@apollo/gateway", "/graphql?query=" + url.QueryEscape("{__typename}")},
}

// startPeers installs the peers if needed (npm ci), composes their
// supergraph and starts them. A peer that cannot be installed or loaded
// is left out, and said so in skipped: the benchmark then compares fewer
// gateways.
func startPeers(b *testing.B, sys *systemtest.System) (ps []*process, skipped []string) {
	b.Helper()
	dir := filepath.Join(systemtest.RepoRoot(), "bench", "peers")
	skip := func(format string, args ...any) ([]*process, []string) {
		msg := fmt.Sprintf("SKIPPED the peer gateways: "+format, args...)
		b.Log(msg)
		return nil, []string{msg}
	}
	if _, err := exec.LookPath("node"); err != nil {
		return skip("%v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		b.Logf("installing the peer gateways (npm ci in %s)", dir)
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return skip("npm ci: %v\n%s", err, out)
		}
	}
	supergraph, err := composePeers(b, sys, dir)
	if err != nil {
		return skip("compose: %v", err)
	}
	for _, p := range peers {
		// Load the package first, so that a broken install skips this
		// peer instead of failing in startProcess.
		check := exec.Command("node", "--input-type=module", "-e", fmt.Sprintf("await import(%q)", p.pkg))
		check.Dir = dir
		if out, err := check.CombinedOutput(); err != nil {
			msg := fmt.Sprintf("SKIPPED %s: cannot load %s: %v\n%s", p.name, p.pkg, err, out)
			b.Log(msg)
			skipped = append(skipped, msg)
			continue
		}
		addr := clustertest.FreeAddr(b)
		_, port, _ := strings.Cut(addr, ":")
		cmd := exec.Command("node", p.script, supergraph, port)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NODE_ENV=production", "NODE_NO_WARNINGS=1")
		ps = append(ps, startProcess(b, p.name, "http://"+addr+"/graphql", "http://"+addr+p.ready, cmd))
	}
	return ps, skipped
}

// loadAverage is the machine's 1-minute load average, as text.
func loadAverage() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	first, _, _ := strings.Cut(string(raw), " ")
	return first
}

// composePeers writes the subgraphs of supergraph.yaml, with the running
// services' URLs, for compose.mjs and returns the supergraph file it made.
func composePeers(b *testing.B, sys *systemtest.System, dir string) (string, error) {
	root := systemtest.RepoRoot()
	raw, err := os.ReadFile(filepath.Join(root, "supergraph.yaml"))
	if err != nil {
		return "", err
	}
	var cfg struct {
		Subgraphs []struct {
			Name   string `yaml:"name"`
			Schema string `yaml:"schema"`
		} `yaml:"subgraphs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", err
	}
	type subgraph struct {
		Name   string `json:"name"`
		URL    string `json:"url"`
		Schema string `json:"schema"`
	}
	var subgraphs []subgraph
	for _, s := range cfg.Subgraphs {
		subgraphs = append(subgraphs, subgraph{s.Name, sys.Services[s.Name], filepath.Join(root, s.Schema)})
	}
	tmp := b.TempDir()
	list, _ := json.Marshal(subgraphs)
	if err := os.WriteFile(filepath.Join(tmp, "subgraphs.json"), list, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(tmp, "supergraph.graphql")
	cmd := exec.Command("node", "compose.mjs", filepath.Join(tmp, "subgraphs.json"), out)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, msg)
	}
	return out, nil
}

// checkSameAnswers sends every query to every gateway (and query (a) to
// its subgraph) and fails unless all return the same data and no errors.
func checkSameAnswers(b *testing.B, sys *systemtest.System, gateways []*process, token string) {
	b.Helper()
	for _, q := range gatewayQueries {
		tok := ""
		if q.auth {
			tok = token
		}
		want, err := fetchData(gateways[0].URL, tok, q.query)
		if err != nil {
			b.Fatalf("query %s, %s: %v", q.name, gateways[0].Name, err)
		}
		if bytes.Count(want, []byte(`"id"`)) < 5 {
			b.Fatalf("query %s: too little data to compare: %s", q.name, want)
		}
		others := map[string]string{}
		for _, g := range gateways[1:] {
			others[g.Name] = g.URL
		}
		if q.direct != "" {
			others["direct"] = sys.Services[q.direct]
		}
		for name, u := range others {
			got, err := fetchData(u, tok, q.query)
			if err != nil {
				b.Fatalf("query %s, %s: %v", q.name, name, err)
			}
			if !bytes.Equal(got, want) {
				b.Fatalf("query %s: %s answers differently from %s:\n%s:\n%s\n%s:\n%s", q.name, name, gateways[0].Name, gateways[0].Name, want, name, got)
			}
		}
	}
}

// fetchData returns the response's data as canonical JSON (keys sorted),
// or an error when there is no data or any error.
func fetchData(url, token, query string) ([]byte, error) {
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   any `json:"data"`
		Errors any `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Errors != nil || r.Data == nil {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return json.Marshal(r.Data) // maps marshal with sorted keys
}
