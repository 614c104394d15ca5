package system_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// The runtime creates the topics a service consumes, not only its own: on
// a fresh broker with only the order service started, the topics of the
// events it handles exist with the project's partition count before any
// producer ran.
func TestAServiceAloneCreatesTheTopicsItConsumes(t *testing.T) {
	sys := systemtest.Start(t, "order")
	cl, err := kgo.NewClient(kgo.SeedBrokers(sys.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := system.Spec(new(system.Config), "order")
	want, err := events.Topics(spec.Consumes)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, events.Topic("order"))
	if len(want) != 4 {
		t.Fatalf("order consumes %v: want product, inventory and payment topics", want)
	}
	for _, topic := range want {
		d, ok := topics[topic]
		if !ok {
			t.Errorf("topic %s was not created", topic)
			continue
		}
		if len(d.Partitions) != service.Partitions {
			t.Errorf("topic %s has %d partitions, want %d", topic, len(d.Partitions), service.Partitions)
		}
	}
}
