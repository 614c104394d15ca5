package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
)

// A fanoutTail reads the order topic as the order service's live feed
// does, to learn each status change's ce_time (subscribers only see `at`).
type fanoutTail struct {
	mu   sync.Mutex
	seen map[string]fanoutEvent // order id + "/" + status
}

type fanoutEvent struct {
	ceTime    time.Time // CloudEvents ce_time: when the change was written
	published time.Time // the Kafka record's timestamp: when the relay produced it
}

func fanoutTailEvents(b *testing.B, brokers []string) *fanoutTail {
	b.Helper()
	cl, err := kafka.Cluster{Brokers: brokers}.NewClient(
		kgo.ConsumeTopics(events.Topic("order")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done; cl.Close() })
	t := &fanoutTail{seen: map[string]fanoutEvent{}}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				meta, msg, err := events.Decode(r)
				m, ok := msg.(*orderv1.OrderStatusChanged)
				if err != nil || !ok {
					return
				}
				key := m.GetOrderId() + "/" + string(core.StatusFromProto(m.GetNewStatus()))
				t.mu.Lock()
				t.seen[key] = fanoutEvent{ceTime: meta.Time, published: r.Timestamp}
				t.mu.Unlock()
			})
		}
	}()
	return t
}

// wait returns the event of order id reaching status; a subscriber has
// received it, so it is on the topic, but this tail may read it later.
func (t *fanoutTail) wait(b *testing.B, id, status string) fanoutEvent {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		t.mu.Lock()
		ev, ok := t.seen[id+"/"+status]
		t.mu.Unlock()
		if ok {
			return ev
		}
		if time.Now().After(deadline) {
			b.Fatalf("no OrderStatusChanged %s for order %s on the topic", status, id)
		}
	}
}

// routerSocketsTo counts the established TCP connections process pid has
// open to port: the router's upstream connections to one subgraph.
func fanoutSocketsTo(pid, port int) int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "01" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[2], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				n++
			}
		}
		_ = f.Close() // read only: a failed close loses nothing
	}
	return n
}

// countFDs is how many files process pid has open.
func fanoutFDs(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds)
}
