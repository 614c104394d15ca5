package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/clustertest"
)

// The faults, as the figures name them.
const (
	killService   = "kill -9 of a service, then start"
	killRouter    = "kill -9 of the router, then start"
	stopRouter    = "graceful restart of the router"
	pgFast        = "Postgres restart (fast shutdown)"
	pgCrash       = "Postgres restart (immediate: crash recovery)"
	brokerRestart = "Kafka broker stop, 0–3 s down, start"
	brokerSlow    = "broker answers fetches and produces 0–1.5 s late, for 8 s"
)

// injector applies one fault at a time, at random moments, and waits for
// the system to report ready again before the next; the time until every
// process answers /readyz is the fault's recovery time.
type injector struct {
	t        *testing.T
	c        *clustertest.Cluster
	rng      *rand.Rand
	r        round
	slow     atomic.Bool // the broker delays requests while set
	counts   map[string]*faultCount
	killed   map[string]int // kill -9 by service
	victims  []string       // services still to kill in this turn
	failures []string
}

type faultCount struct {
	kind  string
	times int
	worst time.Duration
}

func newInjector(t *testing.T, c *clustertest.Cluster, rng *rand.Rand, r round) *injector {
	in := &injector{t: t, c: c, rng: rng, r: r, counts: map[string]*faultCount{}, killed: map[string]int{}}
	if b := c.Broker(); b != nil {
		in.installDelays(b)
	}
	return in
}

// faults lists what can be injected here: the broker only when it is ours.
func (in *injector) faults() []string {
	f := []string{killService, killService, killService, killRouter, stopRouter, pgFast, pgCrash}
	if in.c.Broker() != nil {
		f = append(f, brokerRestart, brokerSlow)
	}
	return f
}

// run injects faults until d has passed, in rounds: every kind once per
// round (a service kill three times), in a random order each round.
func (in *injector) run(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	plan := in.faults()
	for i := 0; time.Now().Before(end); i++ {
		if i%len(plan) == 0 {
			in.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
		}
		gap := in.r.gap[0] + time.Duration(in.rng.Int64N(int64(in.r.gap[1]-in.r.gap[0])))
		time.Sleep(min(gap, time.Until(end)))
		if !time.Now().Before(end) {
			break
		}
		kind := plan[i%len(plan)]
		began := time.Now()
		target := in.inject(ctx, kind)
		took, err := in.waitReady(ctx, began)
		if err != nil {
			in.failures = append(in.failures, fmt.Sprintf("%s%s: %v", kind, target, err))
		}
		fc := in.counts[kind]
		if fc == nil {
			fc = &faultCount{kind: kind}
			in.counts[kind] = fc
		}
		fc.times++
		fc.worst = max(fc.worst, took)
		in.t.Logf("%6.1fs %s%s: ready again after %v", time.Since(end.Add(-d)).Seconds(), kind, target, took.Round(time.Millisecond))
	}
}

// inject applies one fault and returns what it hit, for the log.
func (in *injector) inject(ctx context.Context, kind string) string {
	pause := func(upTo time.Duration) { time.Sleep(time.Duration(in.rng.Int64N(int64(upTo)))) }
	restart := func(p *clustertest.Process, stop func() error) {
		if err := stop(); err != nil {
			in.failures = append(in.failures, fmt.Sprintf("stop %s: %v", p.Name, err))
		}
		pause(2 * time.Second)
		if err := p.Start(); err != nil {
			in.failures = append(in.failures, fmt.Sprintf("start %s: %v", p.Name, err))
		}
	}
	router := in.c.Group(clustertest.RouterGroup).Procs[0]
	switch kind {
	case killService:
		// Services in turn, in a random order each turn, so every one
		// is killed as often as the others.
		if len(in.victims) == 0 {
			in.victims = system.ServiceNames()
			in.rng.Shuffle(len(in.victims), func(i, j int) { in.victims[i], in.victims[j] = in.victims[j], in.victims[i] })
		}
		p := in.c.Group(in.victims[0]).Procs[0]
		in.victims = in.victims[1:]
		in.killed[p.Target]++
		restart(p, p.Kill)
		return " (" + p.Target + ")"
	case killRouter:
		restart(router, router.Kill)
	case stopRouter:
		restart(router, router.Stop)
	case pgFast, pgCrash:
		mode := pgtest.Fast
		if kind == pgCrash {
			mode = pgtest.Immediate
		}
		if err := in.c.Postgres.Stop(ctx, mode); err != nil {
			in.failures = append(in.failures, fmt.Sprintf("stop Postgres: %v", err))
		}
		pause(2 * time.Second)
		if err := in.c.Postgres.Start(ctx); err != nil {
			in.failures = append(in.failures, fmt.Sprintf("start Postgres: %v", err))
		}
	case brokerRestart:
		if err := in.c.RestartBroker(time.Duration(in.rng.Int64N(int64(3 * time.Second)))); err != nil {
			in.failures = append(in.failures, err.Error())
		} else {
			in.installDelays(in.c.Broker())
		}
	case brokerSlow:
		in.slow.Store(true)
		time.Sleep(8 * time.Second)
		in.slow.Store(false)
	}
	return ""
}

// installDelays makes the broker hold fetches and produces for a random
// time while in.slow is set: consumers see events late, producers (the
// relays) wait for their acknowledgements. Faults go with the broker, so
// a restarted one needs them again.
func (in *injector) installDelays(b *kafka.Embedded) {
	fake := b.Fake()
	var mu sync.Mutex // the generator is not safe for concurrent use
	rng := rand.New(rand.NewPCG(in.rng.Uint64(), 7))
	for _, key := range []kmsg.Key{kmsg.Fetch, kmsg.Produce} {
		fake.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			if in.slow.Load() {
				mu.Lock()
				d := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
				mu.Unlock()
				fake.SleepControl(func() { time.Sleep(d) })
			}
			return nil, nil, false // then answer as usual
		})
	}
}

// waitReady waits until every process answers /readyz, up to 2 minutes.
func (in *injector) waitReady(ctx context.Context, since time.Time) (time.Duration, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var down []string
		for _, p := range in.c.Processes() {
			if !p.Ready(ctx) {
				down = append(down, p.Name)
			}
		}
		if len(down) == 0 {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return time.Since(since), fmt.Errorf("not ready after 2 minutes: %v (logs in %s)", down, in.c.Artifacts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *injector) summary() []faultCount {
	var out []faultCount
	for _, k := range []string{killService, killRouter, stopRouter, pgFast, pgCrash, brokerRestart, brokerSlow} {
		if fc := in.counts[k]; fc != nil {
			c := *fc
			if k == killService {
				var which []string
				for _, s := range sortedKeys(in.killed) {
					which = append(which, fmt.Sprintf("%s %d", s, in.killed[s]))
				}
				c.kind = fmt.Sprintf("%s (%s)", k, strings.Join(which, ", "))
			}
			out = append(out, c)
		}
	}
	return out
}

// duplicator delivers events again: it reads every service's topic and
// re-produces records it has seen, byte for byte (same key, value and
// headers, so the same event id), some at once and some 2–10 s later,
// after newer events about the same aggregate. Consumers must recognise
// each copy and ignore stale ones.
type duplicator struct {
	wg        sync.WaitGroup
	now, late atomic.Int64
	failed    atomic.Int64
}

type dupSummary struct {
	now, late, failed int64
	// What the inboxes counted meanwhile (counters).
	recognised, retried int
}

func startDuplicator(ctx context.Context, t *testing.T, c *clustertest.Cluster, rng *rand.Rand) *duplicator {
	var topics []string
	for _, s := range system.ServiceNames() {
		topics = append(topics, events.Topic(s))
	}
	cl, err := c.KafkaCluster().NewClient(kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	d := &duplicator{}
	var mu sync.Mutex
	var seen []*kgo.Record // the most recent records, a bounded window
	d.wg.Go(func() {
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				seen = append(seen, r)
			})
			if len(seen) > 1000 {
				seen = slices.Clone(seen[len(seen)-1000:])
			}
			mu.Unlock()
		}
	})
	var late sync.WaitGroup
	resend := func(r *kgo.Record) bool {
		cp := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, cp).FirstErr(); err != nil {
			d.failed.Add(1) // the broker may be down; that copy is not sent
			return false
		}
		return true
	}
	d.wg.Go(func() {
		defer func() { late.Wait(); cl.Close() }()
		for ctx.Err() == nil {
			time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
			mu.Lock()
			var r *kgo.Record
			if len(seen) > 0 {
				r = seen[rng.IntN(len(seen))]
			}
			delay := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
			isLate := rng.IntN(10) < 3
			mu.Unlock()
			if r == nil {
				continue
			}
			if !isLate {
				if resend(r) {
					d.now.Add(1)
				}
				continue
			}
			late.Go(func() {
				time.Sleep(delay)
				if resend(r) {
					d.late.Add(1)
				}
			})
		}
	})
	return d
}

func (d *duplicator) wait() { d.wg.Wait() }

func (d *duplicator) summary() dupSummary {
	return dupSummary{now: d.now.Load(), late: d.late.Load(), failed: d.failed.Load()}
}

// counters follows Prometheus counters of every service process through
// restarts (a restarted process starts again at 0) by sampling them each
// second and summing the increases. It undercounts what happened between
// a process's last sample and its kill.
type counters struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	total map[string]float64 // by outcome
}

func watchInbox(ctx context.Context, c *clustertest.Cluster, outcomes ...string) *counters {
	w := &counters{total: map[string]float64{}}
	last := map[string]float64{} // process + outcome → last value seen
	w.wg.Go(func() {
		for ctx.Err() == nil {
			for _, p := range c.Processes() {
				if p.Target == clustertest.RouterGroup {
					continue
				}
				for _, o := range outcomes {
					v, _, err := p.Metric(ctx, "mart_inbox_handled_total", map[string]string{"outcome": o})
					if err != nil {
						continue
					}
					k := p.Name + " " + o
					inc := v - last[k]
					if v < last[k] { // restarted since the last sample
						inc = v
					}
					last[k] = v
					w.mu.Lock()
					w.total[o] += inc
					w.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	return w
}

func (w *counters) get(outcome string) int {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return int(w.total[outcome])
}
