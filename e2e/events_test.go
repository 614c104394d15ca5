package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// Catalog changes reach Kafka as protobuf events with CloudEvents headers,
// keyed by product and in the order they happened, carrying the trace of
// the request that made them.
func TestProductEventsReachKafka(t *testing.T) {
	sys := systemtest.Start(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := []byte(`{"query":"mutation { createProduct(input: {sku: \"EVT-1\", name: \"Kettle\", price: {amount: 3000, currency: \"USD\"}}) { product { id } userErrors { message } } }"}`)
	req, _ := http.NewRequest(http.MethodPost, sys.RouterURL, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	req.Header.Set("Authorization", "Bearer "+sys.Admin(t).Token)
	var created struct{ CreateProduct productPayload }
	if r := systemtest.Do(t, req, &created); len(r.Errors) > 0 || created.CreateProduct.Product == nil {
		t.Fatalf("create: %+v %+v", r.Errors, created)
	}
	id := created.CreateProduct.Product.ID
	sys.Admin(t).MustQuery(t, `mutation($id: ID!) { updateProduct(input: {id: $id, name: "Steel kettle"}) { product { id } } }`, map[string]any{"id": id}, nil)
	sys.Admin(t).MustQuery(t, `mutation($id: ID!) { archiveProduct(input: {id: $id}) { product { id } } }`, map[string]any{"id": id}, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(sys.Brokers...), kgo.ConsumeTopics(events.Topic("product")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []events.Meta
	var msgs []any
	for len(got) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			meta, msg, err := events.Decode(r)
			if err != nil {
				t.Errorf("undecodable event: %v", err)
				return
			}
			got, msgs = append(got, meta), append(msgs, msg)
		})
	}
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3", len(got))
	}
	wantTypes := []string{"mart.product.v1.ProductCreated", "mart.product.v1.ProductUpdated", "mart.product.v1.ProductArchived"}
	for i, m := range got {
		if m.Type != wantTypes[i] || m.Key != id || m.Source != "mart/product" || m.ID == "" || m.Time.IsZero() {
			t.Errorf("event %d: %+v", i, m)
		}
	}
	if !strings.Contains(got[0].Traceparent, traceID) {
		t.Errorf("traceparent %q does not continue trace %s", got[0].Traceparent, traceID)
	}
	if c := msgs[0].(*productv1.ProductCreated); c.Product.GetSku() != "EVT-1" || c.Product.GetPrice().GetAmount() != 3000 {
		t.Errorf("ProductCreated payload: %v", c)
	}
	if u := msgs[1].(*productv1.ProductUpdated); u.Product.GetName() != "Steel kettle" {
		t.Errorf("ProductUpdated payload: %v", u)
	}
}
