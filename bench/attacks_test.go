package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// The router's timeouts in this benchmark: short, so that slow and idle
// connections are cut within the run (the defaults are 30s and 120s).
const (
	attackReadTimeout = 3 * time.Second
	attackIdleTimeout = 3 * time.Second
	attackRefusals    = 20 // requests per refused document
	attackSettle      = 30 * time.Second
)

// BenchmarkAttacks sends the security review's attacks to a router of its
// own process and reports how fast each is refused and what the router's
// goroutines, open files and memory did: before, at the worst moment, and
// after the attack ended. The benchmark fails when a refused document is
// answered with anything but its refusal, or when goroutines or files do
// not return to their baseline within attackSettle. It runs once whatever
// -benchtime says (each run is a whole system, and a hundred of them held
// until the benchmark ends exhaust Postgres's connections); its ns/op
// means nothing.
func BenchmarkAttacks(b *testing.B) {
	runAttacks(b)
}

func runAttacks(b *testing.B) {
	sys := systemtest.Start(b, "product")
	router := startRouter(b, sys,
		"MART_HTTP_READ_TIMEOUT="+attackReadTimeout.String(), "MART_HTTP_IDLE_TIMEOUT="+attackIdleTimeout.String())
	base := strings.TrimSuffix(router.URL, "/graphql")
	pid := router.cmd.Process.Pid
	productPort := fanoutPort(b, sys.Services["product"])
	if err := call(context.Background(), router.URL, "", `{ products(first: 1) { edges { cursor } } }`, nil, nil); err != nil {
		b.Fatalf("warm-up query: %v", err)
	}
	time.Sleep(time.Second)
	before := sampleRouter(b, base, pid, productPort)
	worst := before

	docs := []struct{ name, query, code string }{
		{"fragment doubling, 16 levels (703 B)", gqltest.DoublingFragments(16), "QUERY_LIMIT_EXCEEDED"},
		{"fragment doubling, 22 levels", gqltest.DoublingFragments(22), "QUERY_LIMIT_EXCEEDED"},
		{"fragment doubling, 30 levels", gqltest.DoublingFragments(30), "QUERY_LIMIT_EXCEEDED"},
		{"80,000 duplicate fields (560 KB)", `{ products(first: 1) { edges { ` + strings.Repeat("cursor ", 80_000) + `} } }`, "QUERY_LIMIT_EXCEEDED"},
		{"1,000 duplicate fields through a fragment", `{ products(first: 1) { edges { ...E ...E } } } fragment E on ProductEdge { ` + strings.Repeat("cursor ", 500) + `}`, "QUERY_LIMIT_EXCEEDED"},
		{"cyclic fragments", `{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`, "GRAPHQL_VALIDATION_FAILED"},
	}
	var rows [][]string
	for _, d := range docs {
		body, _ := json.Marshal(map[string]any{"query": d.query})
		var took []time.Duration
		for range attackRefusals {
			start := time.Now()
			status, code, err := postRaw(router.URL, body)
			took = append(took, time.Since(start))
			if err != nil || status != http.StatusBadRequest || code != d.code {
				b.Errorf("%s: %d %s %v, want 400 %s", d.name, status, code, err, d.code)
				break
			}
		}
		slices.Sort(took)
		rows = append(rows, []string{d.name, fmt.Sprintf("400 %s", d.code), ms(took[len(took)/2]), ms(took[len(took)-1])})
	}
	worst = worst.max(sampleRouter(b, base, pid, productPort))

	// 2,000 subscribes on one anonymous connection: 100 run, the rest are
	// refused one by one.
	wsURL := "ws" + strings.TrimPrefix(router.URL, "http")
	start := time.Now()
	running, refused := subscribeFlood(b, wsURL, 2_000, func() { worst = worst.max(sampleRouter(b, base, pid, productPort)) })
	rows = append(rows, []string{"2,000 subscribes on one websocket", fmt.Sprintf("%d running, %d TOO_MANY_OPERATIONS", running, refused), "", ms(time.Since(start))})

	// 200 websockets from one address: 100 served, the rest closed 1013.
	start = time.Now()
	floodCtx, cancelFlood := context.WithTimeout(context.Background(), time.Minute)
	acked, later := gqltest.FloodConnections(floodCtx, router.URL, 200, func() { worst = worst.max(sampleRouter(b, base, pid, productPort)) })
	cancelFlood()
	rows = append(rows, []string{"200 websockets from one address", fmt.Sprintf("%d served, %d closed 1013", acked, later), "", ms(time.Since(start))})

	// 50 slow bodies and 200 idle keep-alives: cut by the server's timeouts.
	slow := holdConnections(base, 50, true)
	idle := holdConnections(base, 200, false)
	worst = worst.max(sampleRouter(b, base, pid, productPort))
	rows = append(rows,
		[]string{"50 bodies sent a byte a second", fmt.Sprintf("%d of 50 cut by the server", slow.cut()), ms(slow.median()), ms(slow.longest())},
		[]string{"200 idle keep-alive connections", fmt.Sprintf("%d of 200 closed by the server", idle.cut()), ms(idle.median()), ms(idle.longest())},
	)
	if slow.cut() != 50 || idle.cut() != 200 {
		b.Errorf("slow bodies cut %d of 50, idle connections closed %d of 200", slow.cut(), idle.cut())
	}

	// The attack is over: goroutines and files go back to where they were.
	var after routerSample
	settled := false
	for deadline := time.Now().Add(attackSettle); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		after = sampleRouter(b, base, pid, productPort)
		if after.goroutines <= before.goroutines+5 && after.fds <= before.fds+5 {
			settled = true
			break
		}
	}
	if !settled {
		b.Errorf("after the attacks: %d goroutines and %d files, before %d and %d", after.goroutines, after.fds, before.goroutines, before.fds)
	}
	writeTable(b, "50-attacks", table{
		Title: "Attacks of the security review",
		Intro: fmt.Sprintf("BenchmarkAttacks: each document sent %d times to a router of its own process (defaults but MART_HTTP_READ_TIMEOUT=%s and MART_HTTP_IDLE_TIMEOUT=%s), in front of the product service; "+
			"time from sending to the refusal, then the websocket and connection attacks one after another (their time is the whole attack's).", attackRefusals, attackReadTimeout, attackIdleTimeout),
		Header: []string{"attack", "answer", "p50 ms", "max ms"},
		Rows:   rows,
		Notes: fmt.Sprintf("The router: before the attacks %s; at the worst moment %s; %s after they ended %s. Peak RSS of the run %.0f MiB.",
			before, worst, settleWord(settled), after, mib(router.PeakRSS())),
	})
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func settleWord(ok bool) string {
	if ok {
		return "back to the baseline"
	}
	return "NOT back to the baseline"
}

// postRaw posts body and returns the status and the first error's code.
func postRaw(url string, body []byte) (int, string, error) {
	resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var r struct{ Errors []gqlError }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return resp.StatusCode, "", err
	}
	code := ""
	if len(r.Errors) > 0 {
		code, _ = r.Errors[0].Extensions["code"].(string)
	}
	return resp.StatusCode, code, nil
}

// routerSample is the router process at one moment.
type routerSample struct {
	goroutines, fds, upstream int // upstream: sockets to the product service
	rss                       int64
}

func (s routerSample) String() string {
	return fmt.Sprintf("%d goroutines, %d open files (%d sockets to the product service), RSS %.0f MiB", s.goroutines, s.fds, s.upstream, mib(s.rss))
}

func (s routerSample) max(o routerSample) routerSample {
	return routerSample{goroutines: max(s.goroutines, o.goroutines), fds: max(s.fds, o.fds), upstream: max(s.upstream, o.upstream), rss: max(s.rss, o.rss)}
}

func sampleRouter(b *testing.B, base string, pid, upstreamPort int) routerSample {
	b.Helper()
	s := routerSample{fds: fanoutFDs(pid), upstream: fanoutSocketsTo(pid, upstreamPort), rss: procStatus(pid, "VmRSS")}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatalf("router metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			s.goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return s
}

type frame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subscribeFlood sends n subscribes on one connection and counts the
// operations refused until the router answers a ping sent after them;
// sample runs while they are all in flight.
func subscribeFlood(b *testing.B, wsURL string, n int, sample func()) (running, refused int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if err := wsjson.Write(ctx, c, frame{Type: "connection_init"}); err != nil {
		b.Fatal(err)
	}
	sub, _ := json.Marshal(map[string]any{"query": `subscription { productChanged(id: "0193c1d4-0000-7000-8000-000000000001") { id } }`})
	go func() {
		for i := range n {
			if wsjson.Write(ctx, c, frame{ID: strconv.Itoa(i), Type: "subscribe", Payload: sub}) != nil {
				return
			}
		}
		_ = wsjson.Write(ctx, c, frame{Type: "ping"})
	}()
	for {
		var m frame
		if err := wsjson.Read(ctx, c, &m); err != nil {
			b.Fatalf("after %d refusals: %v", refused, err)
		}
		switch m.Type {
		case "error":
			refused++
		case "pong":
			sample()
			_ = c.Close(websocket.StatusNormalClosure, "") // counted: how the close goes is not measured
			return n - refused, refused
		}
	}
}

// held are connections the benchmark kept open until the server closed
// them, with how long each lasted.
type held struct{ lasted []time.Duration }

func (h held) cut() int { return len(h.lasted) }

func (h held) median() time.Duration {
	if len(h.lasted) == 0 {
		return 0
	}
	return h.lasted[len(h.lasted)/2]
}

func (h held) longest() time.Duration {
	if len(h.lasted) == 0 {
		return 0
	}
	return h.lasted[len(h.lasted)-1]
}

// holdConnections opens n connections to the router and keeps each open
// as long as the server allows: slow ones send a request whose body comes
// a byte a second, idle ones one whole request and then nothing. It waits
// at most three times the read timeout for the server to close them.
func holdConnections(base string, n int, slow bool) held {
	addr := strings.TrimPrefix(base, "http://")
	var mu sync.Mutex
	var h held
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer conn.Close()
			start := time.Now()
			body := `{"query":"{ __typename }"}`
			if slow {
				// A failed write is the server's cut, which the read below records.
				_, _ = fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body))
				done := make(chan struct{})
				defer close(done)
				go func() {
					for i := 0; i < len(body)-1; i++ {
						select {
						case <-done:
							return
						case <-time.After(time.Second):
						}
						if _, err := conn.Write([]byte{body[i]}); err != nil {
							return
						}
					}
				}()
			} else {
				_, _ = fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body) // as above
			}
			_ = conn.SetReadDeadline(time.Now().Add(3 * attackReadTimeout))
			// Read the answer, if any, then wait for the server's close.
			// A reset is the server's cut too (bytes of ours were unread).
			var ne net.Error
			if _, err := io.Copy(io.Discard, conn); errors.As(err, &ne) && ne.Timeout() {
				return // our deadline: the server kept it open
			}
			mu.Lock()
			h.lasted = append(h.lasted, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(h.lasted)
	return h
}
