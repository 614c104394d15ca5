package router

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
)

func TestInt32Problem(t *testing.T) {
	for raw, want := range map[string]string{
		"0": "", "-0": "", "2147483647": "", "-2147483648": "", "2.0": "", "1e3": "", "-2147483648.0": "",
		"2147483648": "non 32-bit", "-2147483649": "non 32-bit", "9223372036854775808": "non 32-bit",
		"99999999999999999999": "non 32-bit", "1e10": "non 32-bit", "1e400": "non 32-bit", "-1e400": "non 32-bit",
		"1.5": "non-integer", "1e-1": "non-integer", "2147483646.5": "non-integer", "-0.25": "non-integer",
	} {
		if got := int32Problem(raw); (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("int32Problem(%s) = %q, want %q", raw, got, want)
		}
	}
}

// Int variables outside 32 bits, or not integral, are refused by the router
// (the engine checked literals only and passed such variables on), wherever
// the Int sits: the variable itself, a list, an input object, a recursive
// one. Nothing reaches the subgraph.
func TestIntVariablesAreRefusedBeyond32Bits(t *testing.T) {
	g := startGraph(t, nil)
	const (
		page    = `query($n: Int) { products(first: $n) { id } }`
		pageNN  = `query($n: Int!) { products(first: $n) { id } }`
		list    = `mutation($q: [Int!]) { restock(input: {id: "p1", quantities: $q}) { id } }`
		input   = `mutation($in: RestockInput!) { restock(input: $in) { id } }`
		inline  = `mutation($s: Int!) { restock(input: {id: "p1", batch: {size: $s}}) { id } }`
		refused = "Int cannot represent "
	)
	tests := []struct {
		name, query, variables, message string
	}{
		{"2^31", page, `{"n":2147483648}`, `Variable "$n" got invalid value 2147483648; Int cannot represent non 32-bit signed integer value: 2147483648`},
		{"-2^31-1", page, `{"n":-2147483649}`, `Variable "$n" got invalid value -2147483649; ` + refused + "non 32-bit"},
		{"2^63", page, `{"n":9223372036854775808}`, refused + "non 32-bit"},
		{"1e400", page, `{"n":1e400}`, refused + "non 32-bit"},
		{"not integral", page, `{"n":1.5}`, `Variable "$n" got invalid value 1.5; Int cannot represent non-integer value: 1.5`},
		{"non-null", pageNN, `{"n":2147483648}`, refused + "non 32-bit"},
		{"duplicate key, last", page, `{"n":1,"n":2147483648}`, refused},
		{"duplicate key, first", page, `{"n":2147483648,"n":1}`, refused},
		{"in a list", list, `{"q":[1,2,2147483648]}`, `Variable "$q" got invalid value 2147483648 at "q[2]"; ` + refused},
		{"a single value for a list", list, `{"q":4294967296}`, refused + "non 32-bit"},
		{"in an input object", input, `{"in":{"id":"p1","batch":{"note":"x","size":2147483648}}}`, `at "in.batch.size"; ` + refused},
		{"in a nested input object's list", input, `{"in":{"id":"p1","next":{"id":"p2","next":{"id":"p3","quantities":[0,-2147483649]}}}}`, `at "in.next.next.quantities[1]"; ` + refused},
		{"a variable inside an inline object", inline, `{"s":2.5}`, refused + "non-integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := post(t, g.server, `{"query":`+quote(tt.query)+`,"variables":`+tt.variables+`}`)
			if res.status != http.StatusBadRequest || res.firstCode() != codeValidationFailed || !strings.Contains(res.Errors[0].Message, tt.message) {
				t.Fatalf("got %d %s, want 400 %s with %q", res.status, res.body, codeValidationFailed, tt.message)
			}
		})
	}
	if n := len(g.products.recorded()); n != 0 {
		t.Fatalf("refused variables reached the subgraph %d times", n)
	}

	// The whole range passes, and so do values the check does not concern.
	accepted := []struct{ query, variables, upstream string }{
		{inline, `{"s":2147483647}`, "2147483647"},
		{inline, `{"s":-2147483648}`, "-2147483648"},
		{list, `{"q":[0,2147483647,-2147483648]}`, "-2147483648"},
		{input, `{"in":{"id":"9223372036854775808","batch":{"size":7,"note":"2147483648"},"next":{"id":"p2","quantities":[3]}},"unused":2147483648}`, "9223372036854775808"},
	}
	for _, tt := range accepted {
		before := len(g.products.recorded())
		res := post(t, g.server, `{"query":`+quote(tt.query)+`,"variables":`+tt.variables+`}`)
		if res.status != http.StatusOK || len(res.Errors) != 0 {
			t.Fatalf("%s: got %d %s", tt.variables, res.status, res.body)
		}
		reqs := g.products.recorded()
		if len(reqs) != before+1 || !strings.Contains(string(mustMarshal(reqs[before].Variables)), tt.upstream) {
			t.Fatalf("%s: the subgraph got %+v", tt.variables, reqs[before:])
		}
	}
}

func quote(s string) string { return string(mustMarshal(s)) }

// Over a websocket, the same check answers the operation with an error.
func TestWebsocketIntVariablesAreRefusedBeyond32Bits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := startGraph(t, nil)
	c := dialRouter(ctx, t, g, "graphql-transport-ws", nil)
	q := json.RawMessage(`{"query":"query($n: Int) { products(first: $n) { id } }","variables":{"n":2147483648}}`)
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: q}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(ctx, t, c, "error", "next")
	var errs []struct {
		Message    string
		Extensions struct{ Code string }
	}
	if err := json.Unmarshal(m.Payload, &errs); err != nil || m.Type != "error" || len(errs) != 1 ||
		errs[0].Message != `Variable "$n" got invalid value 2147483648; Int cannot represent non 32-bit signed integer value: 2147483648` ||
		errs[0].Extensions.Code != codeValidationFailed {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
	if n := len(g.products.recorded()); n != 0 {
		t.Fatalf("the subgraph was asked %d times", n)
	}
}
