package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	commonv1 "github.com/onlinemart/mart/proto/common/v1"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
)

// FuzzDecode feeds Decode records with arbitrary CloudEvents headers and
// payloads, as a consumer (inbox, live feeds) receives them from Kafka.
// Decode must never panic; every failure must wrap ErrMalformed (so the
// consumer dead-letters instead of retrying forever); a record it accepts
// must carry the message named by ce_type and encode back to an equal
// record.
func FuzzDecode(f *testing.F) {
	placed, _ := proto.Marshal(&orderv1.OrderPlaced{OrderId: "0193c1d4-0000-7000-8000-000000000001", UserId: "u",
		Lines: []*orderv1.Line{{ProductId: "p", Quantity: 2, UnitPrice: &commonv1.Money{Amount: 100, Currency: "USD"}}}})
	created, _ := proto.Marshal(&productv1.ProductCreated{Product: &productv1.Product{Id: "p", Sku: "MUG-1", Name: "Mug"}})
	registered, _ := proto.Marshal(&userv1.UserRegistered{UserId: "u", Email: "a@example.com", Name: "Ada"})
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).Format(time.RFC3339Nano)
	seeds := []struct {
		spec, id, source, typ, ts, ct string
		value                         []byte
	}{
		{"1.0", "e1", "mart/order", "mart.order.v1.OrderPlaced", now, "application/protobuf", placed},
		{"1.0", "e2", "mart/product", "mart.product.v1.ProductCreated", "", "", created},
		{"1.0", "e3", "mart/user", "mart.user.v1.UserRegistered", now, "application/protobuf", registered},
		{"1.0", "e4", "mart/user", "mart.user.v1.UserRegistered", now, "application/protobuf", placed}, // wrong payload type
		{"0.3", "e5", "mart/order", "mart.order.v1.OrderPlaced", now, "application/protobuf", placed},
		{"1.0", "", "mart/order", "mart.order.v1.OrderPlaced", now, "", placed},
		{"1.0", "e6", "mart/order", "google.protobuf.Empty", now, "", nil},
		{"1.0", "e7", "mart/order", "no.such.Type", now, "", nil},
		{"1.0", "e8", "mart/order", "mart.order.v1.OrderPlaced", "yesterday", "", placed},
		{"1.0", "e9", "mart/order", "mart.order.v1.OrderPlaced", now, "application/json", []byte(`{"orderId":"x"}`)},
		{"1.0", "e10", "mart/order", "mart.order.v1.OrderPlaced", now, "", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"1.0", "e11", "mart/order", "mart.order.v1.OrderPlaced", now, "", []byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10}}, // huge length prefix
	}
	for _, s := range seeds {
		f.Add(s.spec, s.id, s.source, s.typ, s.ts, s.ct, s.value)
	}
	f.Fuzz(func(t *testing.T, spec, id, source, typ, ts, ct string, value []byte) {
		r := &kgo.Record{Topic: "order.events.v1", Key: []byte("k"), Value: value, Headers: []kgo.RecordHeader{
			{Key: events.HeaderSpecVersion, Value: []byte(spec)},
			{Key: events.HeaderID, Value: []byte(id)},
			{Key: events.HeaderSource, Value: []byte(source)},
			{Key: events.HeaderType, Value: []byte(typ)},
			{Key: events.HeaderTime, Value: []byte(ts)},
			{Key: events.HeaderContentType, Value: []byte(ct)},
		}}
		meta, msg, err := events.Decode(r)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if msg != nil {
				t.Fatalf("a message (%T) came with the error %v", msg, err)
			}
			return
		}
		if msg == nil || events.TypeOf(msg) != typ || meta.Type != typ || meta.ID != id || meta.Source != source {
			t.Fatalf("decoded %+v %T from type %q id %q source %q", meta, msg, typ, id, source)
		}
		// What a consumer accepted, a producer can send again unchanged
		// (the outbox relay does exactly that).
		if meta.Time.IsZero() {
			meta.Time = time.Unix(0, 0)
		}
		again, err := events.NewRecord(meta, msg)
		if err != nil {
			t.Fatalf("re-encode %s: %v", typ, err)
		}
		meta2, msg2, err := events.Decode(again)
		if err != nil || !proto.Equal(msg, msg2) || meta2.ID != meta.ID || !meta2.Time.Equal(meta.Time) {
			t.Fatalf("round trip of %s: %v, %+v vs %+v", typ, err, msg, msg2)
		}
	})
}

// FuzzDecodeHeaders lets the fuzzer choose the header list itself:
// duplicates, unknown keys, missing ones, in any order.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte("ce_specversion\x001.0\x00ce_id\x00e1\x00ce_source\x00mart/user\x00ce_type\x00mart.user.v1.UserRegistered"), []byte{0x0a, 0x01, 'u'})
	f.Add([]byte("ce_type\x00mart.user.v1.UserRegistered\x00ce_type\x00\x00ce_specversion\x001.0"), []byte{})
	f.Add([]byte("\x00\x00\x00"), []byte(nil))
	f.Fuzz(func(t *testing.T, headers, value []byte) {
		var hs []kgo.RecordHeader
		var key []byte
		for i, part := range splitNUL(headers) {
			if i%2 == 0 {
				key = part
				continue
			}
			hs = append(hs, kgo.RecordHeader{Key: string(key), Value: part})
		}
		_, msg, err := events.Decode(&kgo.Record{Value: value, Headers: hs})
		if err != nil && !errors.Is(err, events.ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
		if (err == nil) == (msg == nil) {
			t.Fatalf("message %v with error %v", msg, err)
		}
	})
}

func splitNUL(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, b[start:i])
			start = i + 1
		}
	}
	return append(out, b[start:])
}
