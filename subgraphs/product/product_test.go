package product_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/product"
	"github.com/onlinemart/mart/subgraphs/product/core"
	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// The service as the runtime builds and serves it: a change to the catalog
// goes out on product.events.v1 through the outbox, comes back through
// the service's live feed to a productChanged subscriber, and the API
// lists the product to anyone.
func TestSpecPublishesAndFollowsItsOwnEvents(t *testing.T) {
	ctx := context.Background()
	svc := servicetest.Start(t, product.Spec)
	catalog := core.NewCatalog(svc.DB.DB, core.Options{})
	p, errs, err := catalog.Create(ctx, core.CreateInput{SKU: "MUG-1", Name: "Mug", Price: core.Money{Amount: 1250, Currency: "EUR"}})
	if err != nil || errs != nil {
		t.Fatalf("create: %v %+v", err, errs)
	}

	api := gqltest.Client{URL: svc.URL + "/graphql"}
	sub := api.Subscribe(t, `subscription($id: ID!) { productChanged(id: $id) { id name } }`, map[string]any{"id": p.ID})
	// The feed admits a subscriber once it knows where the topic ends, so
	// retry the change until one arrives.
	var got struct{ ProductChanged struct{ ID, Name string } }
	testrun.WaitFor(t, "the change to reach the subscriber", func() bool {
		name := "Mug " + time.Now().Format("150405.000")
		if _, errs, err := catalog.Update(ctx, core.UpdateInput{ID: p.ID, Name: &name}); err != nil || errs != nil {
			t.Fatalf("update: %v %+v", err, errs)
		}
		m, ok := sub.Poll(time.Second)
		return ok && m.Type == "next" && json.Unmarshal(m.Payload.Data, &got) == nil
	})
	if got.ProductChanged.ID != p.ID {
		t.Errorf("subscriber got %+v", got)
	}

	testrun.WaitFor(t, "the outbox to drain", func() bool { return svc.DB.Count(t, "SELECT count(*) FROM outbox") == 0 })
	recs := kafkatest.ReadTopic(t, svc.Cluster, events.Topic("product"))
	if len(recs) < 2 {
		t.Fatalf("%d product events, want the creation and the changes", len(recs))
	}
	meta, msg, err := events.Decode(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := msg.(*productv1.ProductCreated); !ok || meta.Key != p.ID || c.GetProduct().GetSku() != "MUG-1" {
		t.Errorf("first event %s keyed %s: %v", meta.Type, meta.Key, msg)
	}

	var list struct {
		Products struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	api.MustQuery(t, `{ products(first: 5) { edges { node { id } } } }`, nil, &list)
	if len(list.Products.Edges) != 1 || list.Products.Edges[0].Node.ID != p.ID {
		t.Errorf("products: %+v", list)
	}
}
