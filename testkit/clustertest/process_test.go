package clustertest

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP mart_outbox_relay_active 1 while this process is the active outbox relay of the database.
# TYPE mart_outbox_relay_active gauge
mart_outbox_relay_active{database="test_ab_order"} 1
mart_inbox_handled_total{consumer="order",outcome="handled",type="mart.payment.v1.PaymentSucceeded"} 42
odd_label{v="a \"quoted\", comma} and\\slash"} 2.5 1700000000000
go_goroutines 17
`
	got, err := ParseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d samples: %+v", len(got), got)
	}
	if got[0].Name != "mart_outbox_relay_active" || got[0].Labels["database"] != "test_ab_order" || got[0].Value != 1 {
		t.Errorf("first: %+v", got[0])
	}
	if got[1].Labels["type"] != "mart.payment.v1.PaymentSucceeded" || got[1].Value != 42 {
		t.Errorf("second: %+v", got[1])
	}
	if got[2].Labels["v"] != `a "quoted", comma} and\slash` || got[2].Value != 2.5 {
		t.Errorf("escapes: %+v", got[2])
	}
	if got[3].Name != "go_goroutines" || len(got[3].Labels) != 0 || got[3].Value != 17 {
		t.Errorf("no labels: %+v", got[3])
	}
	if !matches(got[1].Labels, map[string]string{"consumer": "order"}) || matches(got[1].Labels, map[string]string{"consumer": "payment"}) {
		t.Error("matches")
	}
}
