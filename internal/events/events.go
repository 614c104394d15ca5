// Package events defines how a domain event travels through Kafka: the
// record value is the binary protobuf message and its metadata rides in
// headers following the CloudEvents Kafka binary binding, so any
// CloudEvents-aware tool can read our topics.
package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Record header names (CloudEvents Kafka binary binding plus W3C trace
// context) and their fixed values.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"

	SpecVersion = "1.0"
	ContentType = "application/protobuf"
)

// Meta is everything about an event except its payload. Topic, Key and ID
// identify it; Partition and Offset are set only on consumed records.
type Meta struct {
	ID          string    // ce_id, unique per event (UUIDv7)
	Type        string    // ce_type, full protobuf message name
	Source      string    // ce_source, e.g. "mart/product"
	Time        time.Time // ce_time, when the event happened
	Topic       string
	Key         string // aggregate id: one aggregate's events stay in order
	Partition   int32
	Offset      int64
	Traceparent string // W3C trace context, empty when none
}

// Topic is the topic a service publishes all its events to.
func Topic(service string) string { return service + ".events.v1" }

// TopicOf returns the topic events of type typ travel on: the topic of
// the service that produces them, named by the type's protobuf package
// (mart.<service>.v1.<Event>).
func TopicOf(typ string) (string, error) {
	parts := strings.Split(typ, ".")
	if len(parts) != 4 || parts[0] != "mart" || parts[2] != "v1" || parts[1] == "" || parts[3] == "" {
		return "", fmt.Errorf("event type %q is not named mart.<service>.v1.<Event>", typ)
	}
	return Topic(parts[1]), nil
}

// Topics returns the topics the event types of msgs travel on, each once,
// in the order first met.
func Topics(msgs []proto.Message) ([]string, error) {
	var topics []string
	for _, typ := range Names(msgs) {
		topic, err := TopicOf(typ)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
	}
	return topics, nil
}

// Names returns the event types of msgs (typed nils will do), in order.
func Names(msgs []proto.Message) []string {
	names := make([]string, len(msgs))
	for i, m := range msgs {
		names[i] = TypeOf(m)
	}
	return names
}

// Source is the ce_source of a service's events.
func Source(service string) string { return "mart/" + service }

// DLQTopic is the dead-letter topic of a consumer group.
func DLQTopic(group string) string { return group + ".dlq" }

// TypeOf returns the ce_type of msg: its full protobuf name.
func TypeOf(msg proto.Message) string {
	return string(msg.ProtoReflect().Descriptor().FullName())
}

// NewID returns a new event id. UUIDv7 sorts by creation time, which keeps
// inbox index inserts local and ids readable in logs.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// NewRecord encodes msg as a record. meta.Type is taken from msg; Topic,
// Key, ID, Source and Time must be set (Time is sent in UTC).
func NewRecord(meta Meta, msg proto.Message) (*kgo.Record, error) {
	value, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", TypeOf(msg), err)
	}
	meta.Type = TypeOf(msg)
	return RawRecord(meta, value), nil
}

// RawRecord builds a record from an already marshalled payload of type
// meta.Type; the outbox relay uses it to publish stored bytes unchanged.
func RawRecord(meta Meta, value []byte) *kgo.Record {
	h := []kgo.RecordHeader{
		{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		{Key: HeaderID, Value: []byte(meta.ID)},
		{Key: HeaderSource, Value: []byte(meta.Source)},
		{Key: HeaderType, Value: []byte(meta.Type)},
		{Key: HeaderTime, Value: []byte(meta.Time.UTC().Format(time.RFC3339Nano))},
		{Key: HeaderContentType, Value: []byte(ContentType)},
	}
	if meta.Traceparent != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderTraceparent, Value: []byte(meta.Traceparent)})
	}
	return &kgo.Record{Topic: meta.Topic, Key: []byte(meta.Key), Value: value, Headers: h}
}

// ErrMalformed marks a record that can never be decoded, whatever the
// number of retries: a consumer should dead-letter it, not retry it.
var ErrMalformed = errors.New("malformed event")

// Decode reads a record's metadata and payload. The message type is looked
// up by ce_type among the protobuf types linked into the binary. Every
// error wraps ErrMalformed.
func Decode(r *kgo.Record) (Meta, proto.Message, error) {
	meta := Meta{Topic: r.Topic, Key: string(r.Key), Partition: r.Partition, Offset: r.Offset}
	var specVersion, contentType, ts string
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderSpecVersion:
			specVersion = v
		case HeaderID:
			meta.ID = v
		case HeaderSource:
			meta.Source = v
		case HeaderType:
			meta.Type = v
		case HeaderTime:
			ts = v
		case HeaderContentType:
			contentType = v
		case HeaderTraceparent:
			meta.Traceparent = v
		}
	}
	malformed := func(format string, args ...any) (Meta, proto.Message, error) {
		return meta, nil, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case specVersion != SpecVersion:
		return malformed("%s %q, want %q", HeaderSpecVersion, specVersion, SpecVersion)
	case meta.ID == "":
		return malformed("missing %s", HeaderID)
	case meta.Source == "":
		return malformed("missing %s", HeaderSource)
	case meta.Type == "":
		return malformed("missing %s", HeaderType)
	case contentType != "" && contentType != ContentType:
		return malformed("%s %q, want %q", HeaderContentType, contentType, ContentType)
	}
	if ts != "" { // ce_time is optional in CloudEvents
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return malformed("%s: %v", HeaderTime, err)
		}
		meta.Time = t
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(meta.Type))
	if err != nil {
		return malformed("unknown %s %q", HeaderType, meta.Type)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(r.Value, msg); err != nil {
		return malformed("%s payload: %v", meta.Type, err)
	}
	return meta, msg, nil
}

type traceparentKey struct{}

// WithTraceparent returns ctx carrying a W3C traceparent, so events
// written while handling it (the outbox) continue the same trace.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return context.WithValue(ctx, traceparentKey{}, traceparent)
}

// TraceparentFrom returns the traceparent carried by ctx, or "".
func TraceparentFrom(ctx context.Context) string {
	tp, _ := ctx.Value(traceparentKey{}).(string)
	return tp
}
