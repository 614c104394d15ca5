// Package live feeds GraphQL subscriptions from Kafka. A Feed tails a topic
// without a consumer group, so every replica of a service sees every event
// and can serve any subscriber, whichever replica made the change.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
)

// Event is one decoded event.
type Event struct {
	Meta    events.Meta
	Message proto.Message
}

// buffer is how many events a subscriber may fall behind before it is
// dropped; a dropped subscriber's channel closes and its client resubscribes.
const buffer = 64

// Feed fans out a topic's events to subscribers by record key.
type Feed struct {
	cluster kafka.Cluster
	topic   string
	log     *slog.Logger

	mu        sync.Mutex
	subs      map[string]map[chan Event]struct{}
	ready     chan struct{} // closed once end offsets are known, or the feed stopped
	readyOnce sync.Once
	closed    bool
}

// NewFeed returns a feed of topic; Run starts it.
func NewFeed(cluster kafka.Cluster, topic string, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{cluster: cluster, topic: topic, log: log, subs: map[string]map[chan Event]struct{}{}, ready: make(chan struct{})}
}

// Run tails the topic from its current end until ctx is cancelled, then
// closes every subscriber. The end offsets are resolved before any
// subscriber is admitted, so nothing published after Subscribe returns is
// missed.
func (f *Feed) Run(ctx context.Context) error {
	defer f.closeAll()
	start, err := f.endOffsets(ctx)
	if err != nil {
		return err
	}
	cl, err := f.cluster.NewClient(kgo.ConsumePartitions(start))
	if err != nil {
		return err
	}
	defer cl.Close()
	f.readyOnce.Do(func() { close(f.ready) })
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				f.log.Warn("live feed fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			meta, msg, err := events.Decode(r)
			if err != nil {
				return // the consumers' dead-letter topics report these
			}
			f.publish(Event{Meta: meta, Message: msg})
		})
	}
}

func (f *Feed) endOffsets(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
	cl, err := f.cluster.NewClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, f.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("live feed %s: end offsets: %w", f.topic, err)
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(o.Offset) })
	return map[string]map[int32]kgo.Offset{f.topic: start}, nil
}

// Subscribe returns the events with the given key from now on. The channel
// closes when ctx ends, the feed stops, or the subscriber falls too far
// behind.
func (f *Feed) Subscribe(ctx context.Context, key string) <-chan Event {
	ch := make(chan Event, buffer)
	select {
	case <-f.ready:
	case <-ctx.Done():
		close(ch)
		return ch
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(ch)
		return ch
	}
	if f.subs[key] == nil {
		f.subs[key] = map[chan Event]struct{}{}
	}
	f.subs[key][ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.drop(key, ch)
	}()
	return ch
}

func (f *Feed) publish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs[ev.Meta.Key] {
		select {
		case ch <- ev:
		default:
			f.log.Warn("live subscriber too slow, dropping it", "topic", f.topic, "key", ev.Meta.Key)
			f.dropLocked(ev.Meta.Key, ch)
		}
	}
}

func (f *Feed) drop(key string, ch chan Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropLocked(key, ch)
}

func (f *Feed) dropLocked(key string, ch chan Event) {
	if _, ok := f.subs[key][ch]; !ok {
		return
	}
	delete(f.subs[key], ch)
	if len(f.subs[key]) == 0 {
		delete(f.subs, key)
	}
	close(ch)
}

func (f *Feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.readyOnce.Do(func() { close(f.ready) })
	for key, chans := range f.subs {
		for ch := range chans {
			f.dropLocked(key, ch)
		}
	}
}
