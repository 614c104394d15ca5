package kafka_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
)

func TestEmbeddedListensOnGivenAddress(t *testing.T) {
	// Find a free port, then ask for exactly that address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	e, err := kafka.StartEmbedded(kafka.EmbeddedOptions{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Addrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("Addrs() = %v, want [%s]", got, addr)
	}
	cl, err := e.Cluster().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, cl); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestPingFailsWithoutBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now

	cl, err := kafka.Cluster{Brokers: []string{addr}}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, cl); err == nil {
		t.Fatal("Ping succeeded with no broker")
	}
}

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for range 2 {
		if err := kafka.EnsureTopics(ctx, cl, 4, "a.events.v1", "b.events.v1"); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, "a.events.v1", "b.events.v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.events.v1", "b.events.v1"} {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) != 4 {
			t.Errorf("topic %s: exists=%v err=%v partitions=%d, want 4", name, ok, d.Err, len(d.Partitions))
		}
	}
}

func TestProduceAutoCreatesTopicAndConsumes(t *testing.T) {
	cluster := kafkatest.Start(t)
	cl := kafkatest.Client(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto.events.v1", Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	recs := kafkatest.ReadTopic(t, cluster, "auto.events.v1")
	if len(recs) != 1 || string(recs[0].Value) != "hello" || string(recs[0].Key) != "k" {
		t.Fatalf("read back %d records, want the one produced", len(recs))
	}
}

func TestEmbeddedKeepsRecordsAndOffsetsInDataDir(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := kafka.EmbeddedOptions{Addr: addr, DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// First life: three records produced, the first two consumed and
	// committed by a group.
	e, err := kafka.StartEmbedded(o)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.Cluster().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(ctx, cl, 1, "kept"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "kept", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	consumer, err := e.Cluster().NewClient(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("kept"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if ctx.Err() != nil {
			t.Fatalf("first life: read %v", got)
		}
	}
	// Commit up to b: c stays to be consumed.
	if err := consumer.CommitRecords(ctx, &kgo.Record{Topic: "kept", Partition: 0, Offset: 1, LeaderEpoch: -1}); err != nil {
		t.Fatal(err)
	}
	consumer.Close()
	e.Close()

	// Second life on the same directory and address: the group resumes
	// at c.
	e, err = kafka.StartEmbedded(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	consumer, err = e.Cluster().NewClient(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got = nil
	for len(got) < 1 {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if ctx.Err() != nil {
			t.Fatal("second life: nothing read")
		}
	}
	if got[0] != "c" {
		t.Fatalf("after restart the group read %v first, want c (the first uncommitted record)", got)
	}
}
