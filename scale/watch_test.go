package scale_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/clustertest"
)

// relayWatch samples mart_outbox_relay_active of every replica of every
// service every 200ms. More than one active relay of a service is a
// violation at any time; none active is a violation too, except while the
// test is failing one over (expectFailover … failoverDone). A sample where
// a running replica did not answer its scrape is skipped, not guessed.
type relayWatch struct {
	mu         sync.Mutex
	failing    map[string]bool
	samples    int
	skipped    int
	violations int
	gaps       int // samples with no active relay during a failover
	done       chan struct{}
}

func watchRelays(ctx context.Context, c *clustertest.Cluster) *relayWatch {
	w := &relayWatch{failing: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			next := time.Now().Add(sample)
			var wg sync.WaitGroup
			for _, svc := range system.ServiceNames() {
				wg.Go(func() { w.sample(ctx, c, svc) })
			}
			wg.Wait()
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}()
	return w
}

func (w *relayWatch) sample(ctx context.Context, c *clustertest.Cluster, svc string) {
	procs := c.Group(svc).Procs
	vals := make([]float64, len(procs))
	failed := make([]bool, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			if !p.Running() {
				return
			}
			v, _, err := p.Metric(ctx, "mart_outbox_relay_active", nil)
			vals[i], failed[i] = v, err != nil && p.Running()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	var sum float64
	for i := range procs {
		if failed[i] {
			w.mu.Lock()
			w.skipped++
			w.mu.Unlock()
			return
		}
		sum += vals[i]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	switch {
	case sum > 1:
		w.violations++
	case sum == 0 && w.failing[svc]:
		w.gaps++
	case sum == 0:
		w.violations++
	}
}

func (w *relayWatch) expectFailover(svc string) { w.mu.Lock(); w.failing[svc] = true; w.mu.Unlock() }
func (w *relayWatch) failoverDone(svc string)   { w.mu.Lock(); w.failing[svc] = false; w.mu.Unlock() }
func (w *relayWatch) wait()                     { <-w.done }

func (w *relayWatch) result() (samples, violations, gaps int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples, w.violations, w.gaps
}

// groupWatch samples the membership of every consumer group every 250ms
// and counts the changes it sees (each one a rebalance) and the samples
// where a stable group had a partition owned twice.
type groupWatch struct {
	mu         sync.Mutex
	changes    map[string]int
	overlaps   int
	done       chan struct{}
	lastLayout map[string]string
}

func watchGroups(ctx context.Context, c *clustertest.Cluster) *groupWatch {
	w := &groupWatch{changes: map[string]int{}, lastLayout: map[string]string{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for _, g := range sortedKeys(consumerGroups) {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				m, err := c.DescribeGroup(dctx, g)
				cancel()
				if err != nil || m.State != "Stable" {
					continue
				}
				var parts []string
				for _, mem := range m.Members {
					parts = append(parts, fmt.Sprintf("%s:%d", mem.ID, len(mem.Partitions)))
				}
				layout := strings.Join(parts, ",")
				_, overlaps := m.Owned()
				w.mu.Lock()
				if prev, ok := w.lastLayout[g]; ok && prev != layout {
					w.changes[g]++
				}
				w.lastLayout[g] = layout
				w.overlaps += overlaps
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *groupWatch) wait() { <-w.done }

func (w *groupWatch) result() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for g, n := range w.changes {
		out[g] = n
	}
	out["overlaps"] = w.overlaps
	return out
}

type takeover struct {
	service, from, to string
	took              time.Duration
}

// figures are the numbers of one run.
type figures struct {
	started, total, drained                        time.Duration
	splits                                         []string
	subscriptions, subscriptionViolations          int
	tokenViolations, lockoutViolations             int
	rebalanceAfterKill, rebalanceAfterRestart      time.Duration
	confirmedWhileDown                             int64
	takeovers                                      []takeover
	load                                           loadSummary
	relaySamples, relayViolations, relayGapSamples int
	rebalances                                     map[string]int
	peakConnections                                int64
	books                                          books
	chains                                         chains
}

// sharedRows place the counts of clustertest.CheckBooks in the suite's
// row for the same promise; the rest add up to "other cross-service
// books", whose parts the report lists under its table.
var sharedRows = map[string][]string{
	"orders not CONFIRMED":                 {"orders lost"},
	"payments ≠ one SUCCEEDED per order":   {"payment mismatches", "double charges"},
	"stock movements ≠ one each per order": {"repeated movements", "orders with wrong stock"},
	"stock counters ≠ ledger":              {"stock rows broken", "ledger mismatches"},
	"notifications sent twice":             {"duplicate notifications"},
	"events left in outboxes":              {"events left in outboxes"},
}

// splitShared returns the CheckBooks counts by suite row, and those of no
// row by their own name.
func (b books) splitShared() (rows, rest map[string]int) {
	rows, rest = map[string]int{}, b.shared.Violations()
	for row, names := range sharedRows {
		for _, k := range names {
			rows[row] += rest[k]
			delete(rest, k)
		}
	}
	return rows, rest
}

// violations are the suite's checks by name; every count of CheckBooks is
// in exactly one.
func (f *figures) violations() map[string]int {
	b := f.books
	v, rest := b.splitShared()
	for k, n := range map[string]int{
		"relays active ≠ 1":                    f.relayViolations,
		"partitions owned twice":               f.rebalances["overlaps"],
		"event chains":                         f.chains.violations,
		"subscription across routers":          f.subscriptionViolations,
		"token verification":                   f.tokenViolations,
		"shared lockout":                       f.lockoutViolations,
		"orders not CONFIRMED":                 b.notConfirmed,
		"orders cancelled (driver)":            f.load.cancelled,
		"status recorded twice":                b.historyDupes,
		"stock movements ≠ one each per order": b.movementMisfits,
		"stock counters ≠ ledger":              b.onHandViolations,
		"other cross-service books":            0,
	} {
		v[k] += n
	}
	for _, n := range rest {
		v["other cross-service books"] += n
	}
	return v
}

// booksRest lists the parts of "other cross-service books" and the causes
// written on dead letters.
func (f *figures) booksRest() string {
	_, rest := f.books.splitShared()
	var parts []string
	for _, k := range sortedKeys(rest) {
		parts = append(parts, fmt.Sprintf("%s %d", k, rest[k]))
	}
	s := "Other cross-service books (clustertest.CheckBooks): " + strings.Join(parts, ", ") + "."
	for _, w := range f.books.shared.DeadLetterWhy {
		s += "\nDead letter: " + w
	}
	return s
}

func (f *figures) markdown() string {
	var s strings.Builder
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	fmt.Fprintf(&s, "| figure | value |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(&s, "| %s | %v |\n", k, v) }
	row("processes", fmt.Sprintf("%d services × %d replicas + %d routers, haproxy, 1 broker (%d partitions per topic), 1 Postgres", len(system.ServiceNames()), replicas, routers, partitions))
	row("cluster start", ms(f.started))
	row("whole test", ms(f.total))
	row("load", fmt.Sprintf("%d customers for %s", customers, ms(f.load.duration)))
	row("orders accepted (driver)", f.load.accepted)
	row("orders in the database / CONFIRMED", fmt.Sprintf("%d / %d", f.books.shared.Orders, f.books.shared.ByStatus["CONFIRMED"]))
	row("charges / refunds / order notifications (books)", fmt.Sprintf("%d / %d / %d", f.books.shared.Charges, f.books.shared.Refunds, f.books.shared.Notifications))
	row("slowest order seen CONFIRMED by the driver", ms(f.load.slowest))
	row("failed requests (retried)", fmt.Sprintf("%d (first: %.120s)", f.load.reqErrors, f.load.firstErr))
	row("partition split (members)", strings.Join(f.splits, "; "))
	row("order replica killed: group at 1 member after", ms(f.rebalanceAfterKill))
	row("orders confirmed meanwhile", f.confirmedWhileDown)
	row("restarted: group at 2 members after", ms(f.rebalanceAfterRestart))
	var rb []string
	total := 0
	for _, g := range sortedKeys(consumerGroups) {
		rb = append(rb, fmt.Sprintf("%s %d", g, f.rebalances[g]))
		total += f.rebalances[g]
	}
	row("rebalances observed", fmt.Sprintf("%d (%s)", total, strings.Join(rb, ", ")))
	var tk []string
	var worst time.Duration
	for _, t := range f.takeovers {
		tk = append(tk, fmt.Sprintf("%s %s", t.service, ms(t.took)))
		worst = max(worst, t.took)
	}
	row("relay failovers (kill active → standby active)", fmt.Sprintf("%d: %s", len(f.takeovers), strings.Join(tk, ", ")))
	row("slowest relay takeover", ms(worst))
	row("relay samples (every 200 ms × 6 services)", fmt.Sprintf("%d, %d with no active relay during failovers", f.relaySamples, f.relayGapSamples))
	row("order events read / republished duplicates skipped", fmt.Sprintf("%d / %d (%d orders)", f.chains.records, f.chains.duplicates, f.chains.orders))
	row("subscriptions on router 2 for orders via router 1", f.subscriptions)
	row("drain after load stopped", ms(f.drained))
	row("peak Postgres client connections", f.peakConnections)
	fmt.Fprintf(&s, "\n| check | violations |\n|---|---|\n")
	v := f.violations()
	for _, k := range sortedKeys(v) {
		row(k, v[k])
	}
	fmt.Fprintf(&s, "\n%s\n", f.booksRest())
	return s.String()
}
