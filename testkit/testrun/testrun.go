// Package testrun holds small helpers tests of long-running components
// share: run one in the background until the test ends, read a metric.
package testrun

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Background runs run(ctx) until the test ends or the returned stop is
// called; stop cancels ctx, waits for run to return, and fails the test if
// it returns an error or takes more than 20s.
func Background(t testing.TB, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// Counter returns the value of the first series of counter name, in the
// default Prometheus registry, whose labels include labels; 0 if none.
func Counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	if v := series(t, name, labels); len(v) > 0 {
		return v[0]
	}
	return 0
}

// WaitFor polls cond until it holds, failing the test after a generous
// deadline: how long things take is not what tests check.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CounterSum adds up every series of counter name whose labels include
// labels.
func CounterSum(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	var sum float64
	for _, v := range series(t, name, labels) {
		sum += v
	}
	return sum
}

// series returns the values of the counter series matching labels.
func series(t testing.TB, name string, labels map[string]string) []float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			out = append(out, m.GetCounter().GetValue())
		}
	}
	return out
}
