// Package kafkatest gives tests their own in-process Kafka broker and ways
// to look at what a topic holds.
package kafkatest

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
)

// Start starts an embedded broker on a free port, stopped when the test
// ends, and returns how to reach it.
func Start(t testing.TB) kafka.Cluster {
	t.Helper()
	e, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(e.Close)
	return e.Cluster()
}

// Client returns a client of the cluster, closed when the test ends.
func Client(t testing.TB, c kafka.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := c.NewClient(opts...)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Record encodes msg as an event that service publishes about key, on its
// topic, with a new id: a fresh fact, or a fresh copy of one.
func Record(t testing.TB, service, key string, msg proto.Message) *kgo.Record {
	t.Helper()
	r, err := events.NewRecord(events.Meta{
		ID: events.NewID(), Source: events.Source(service), Time: time.Now(), Topic: events.Topic(service), Key: key,
	}, msg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Produce publishes recs with cl and waits until the broker has them all,
// failing the test if it does not within a minute.
func Produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Count returns how many records topic holds (0 if it does not exist).
func Count(t testing.TB, c kafka.Cluster, topic string) int64 {
	t.Helper()
	ends := endOffsets(t, c, topic)
	var n int64
	for _, end := range ends {
		n += end
	}
	return n
}

// ReadTopic returns every record topic holds now, ordered by partition and
// offset.
func ReadTopic(t testing.TB, c kafka.Cluster, topic string) []*kgo.Record {
	t.Helper()
	ends := endOffsets(t, c, topic)
	var want int64
	for _, end := range ends {
		want += end
	}
	if want == 0 {
		return nil
	}
	cl := Client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for int64(len(recs)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("kafkatest: read %s: got %d of %d records: %v", topic, len(recs), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] { // ignore records produced since
				recs = append(recs, r)
			}
		})
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return recs
}

// endOffsets returns topic's end offset per partition.
func endOffsets(t testing.TB, c kafka.Cluster, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(Client(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	ends := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Partition >= 0 { // a missing topic lists partition -1
			ends[o.Partition] = o.Offset
		}
	})
	return ends
}
