package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/onlinemart/mart/internal/events"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestRecordRoundTrip(t *testing.T) {
	id := events.NewID()
	if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
		t.Fatalf("NewID() = %q: want a UUIDv7 (err %v)", id, err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.FixedZone("CET", 3600))
	msg := &productv1.ProductCreated{Product: &productv1.Product{
		Id: "p-1", Sku: "SKU-1", Name: "Lamp", Price: &productv1.Money{Amount: 1999, Currency: "EUR"}, Active: true,
	}}
	in := events.Meta{
		ID: id, Source: events.Source("product"), Time: at,
		Topic: events.Topic("product"), Key: "p-1", Traceparent: tp,
	}
	rec, err := events.NewRecord(in, msg)
	if err != nil {
		t.Fatal(err)
	}

	if rec.Topic != "product.events.v1" || string(rec.Key) != "p-1" {
		t.Errorf("topic/key = %q/%q, want product.events.v1/p-1", rec.Topic, rec.Key)
	}
	wantHeaders := map[string]string{
		"ce_specversion": "1.0",
		"ce_id":          id,
		"ce_source":      "mart/product",
		"ce_type":        "mart.product.v1.ProductCreated",
		"ce_time":        "2026-03-04T04:06:07.891011121Z",
		"content-type":   "application/protobuf",
		"traceparent":    tp,
	}
	if len(rec.Headers) != len(wantHeaders) {
		t.Errorf("got %d headers, want %d", len(rec.Headers), len(wantHeaders))
	}
	for k, want := range wantHeaders {
		if got, ok := header(rec, k); !ok || got != want {
			t.Errorf("header %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	var plain productv1.ProductCreated
	if err := proto.Unmarshal(rec.Value, &plain); err != nil || !proto.Equal(&plain, msg) {
		t.Errorf("value is not the binary protobuf message (err %v)", err)
	}

	// As a consumer sees it.
	rec.Partition, rec.Offset = 2, 41
	meta, got, err := events.Decode(rec)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := in
	want.Type, want.Partition, want.Offset = "mart.product.v1.ProductCreated", 2, 41
	if !meta.Time.Equal(at) {
		t.Errorf("time = %v, want %v", meta.Time, at)
	}
	meta.Time, want.Time = time.Time{}, time.Time{}
	if meta != want {
		t.Errorf("meta = %+v\nwant   %+v", meta, want)
	}
	if _, ok := got.(*productv1.ProductCreated); !ok || !proto.Equal(got, msg) {
		t.Errorf("message = %T %v, want %v", got, got, msg)
	}
}

func TestRecordWithoutTraceparentHasNoHeader(t *testing.T) {
	rec, err := events.NewRecord(events.Meta{ID: events.NewID(), Source: "mart/product", Time: time.Now(), Topic: "t", Key: "k"},
		&productv1.ProductArchived{ProductId: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := header(rec, "traceparent"); ok {
		t.Error("traceparent header present without a traceparent")
	}
	meta, _, err := events.Decode(rec)
	if err != nil || meta.Traceparent != "" {
		t.Errorf("Decode: meta.Traceparent=%q err=%v", meta.Traceparent, err)
	}
}

func TestDecodeRejectsMalformedRecords(t *testing.T) {
	good := func() *kgo.Record {
		r, err := events.NewRecord(events.Meta{ID: events.NewID(), Source: "mart/product", Time: time.Now(), Topic: "t", Key: "k"},
			&productv1.ProductArchived{ProductId: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	without := func(key string) func(*kgo.Record) {
		return func(r *kgo.Record) {
			var hs []kgo.RecordHeader
			for _, h := range r.Headers {
				if h.Key != key {
					hs = append(hs, h)
				}
			}
			r.Headers = hs
		}
	}
	set := func(key, value string) func(*kgo.Record) {
		return func(r *kgo.Record) {
			for i := range r.Headers {
				if r.Headers[i].Key == key {
					r.Headers[i].Value = []byte(value)
				}
			}
		}
	}
	cases := map[string]func(*kgo.Record){
		"missing ce_id":          without("ce_id"),
		"missing ce_type":        without("ce_type"),
		"missing ce_source":      without("ce_source"),
		"missing ce_specversion": without("ce_specversion"),
		"unknown ce_type":        set("ce_type", "mart.nothing.v1.Nope"),
		"bad ce_time":            set("ce_time", "yesterday"),
		"json content":           set("content-type", "application/json"),
		"garbage value":          func(r *kgo.Record) { r.Value = []byte("not a protobuf \xff\xff") },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			r := good()
			spoil(r)
			if _, _, err := events.Decode(r); !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestTraceparentContext(t *testing.T) {
	ctx := context.Background()
	if got := events.TraceparentFrom(ctx); got != "" {
		t.Errorf("empty ctx has traceparent %q", got)
	}
	if got := events.TraceparentFrom(events.WithTraceparent(ctx, tp)); got != tp {
		t.Errorf("TraceparentFrom = %q, want %q", got, tp)
	}
}

func TestNaming(t *testing.T) {
	if got := events.Topic("order"); got != "order.events.v1" {
		t.Errorf("Topic = %q", got)
	}
	if got := events.Source("order"); got != "mart/order" {
		t.Errorf("Source = %q", got)
	}
	if got := events.DLQTopic("inventory.order-events"); got != "inventory.order-events.dlq" {
		t.Errorf("DLQTopic = %q", got)
	}
}
