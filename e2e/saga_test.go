package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/testkit/systemtest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// saga is a running system with helpers to stock products and place and
// follow orders through the router.
type saga struct {
	t     *testing.T
	sys   *systemtest.System
	admin systemtest.Client
}

func startSaga(t *testing.T) *saga {
	sys := systemtest.Start(t)
	return &saga{t: t, sys: sys, admin: sys.Admin(t)}
}

// product creates a product priced in USD with units in stock, and waits
// until inventory and the order service know it (both learn it from
// product events).
func (s *saga) product(sku string, price, units int) string {
	s.t.Helper()
	p := create(s.t, s.sys, map[string]any{"sku": sku, "name": "Saga " + sku, "price": map[string]any{"amount": price, "currency": "USD"}})
	if p.Product == nil {
		s.t.Fatalf("create %s: %+v", sku, p.UserErrors)
	}
	id := p.Product.ID
	if units > 0 {
		testrun.WaitFor(s.t, "a stock row for "+sku, func() bool {
			var out struct {
				AdjustStock struct{ UserErrors []userError }
			}
			r := s.admin.Query(s.t, `mutation($id: ID!, $n: Int!, $key: String!) { adjustStock(input: {productId: $id, delta: $n, reason: "receipt", idempotencyKey: $key}) { userErrors { field message code } } }`,
				map[string]any{"id": id, "n": units, "key": "receipt-" + sku}, &out)
			return len(r.Errors) == 0 && len(out.AdjustStock.UserErrors) == 0
		})
	}
	return id
}

type orderView struct {
	ID           string
	Status       string
	StatusReason *string
	Total        struct{ Amount int64 }
	History      []struct{ Status string }
	Payment      *struct{ Status string }
}

const orderFields = `id status statusReason total { amount } history { status } payment { status }`

type placed struct {
	PlaceOrder struct {
		Order      *struct{ ID, Status string }
		UserErrors []userError
	}
}

const placeOrder = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { order { id status } userErrors { field message code } } }`

func orderInput(token, key string, lines ...any) map[string]any {
	in := map[string]any{
		"lines":           lines,
		"shippingAddress": map[string]any{"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
		"paymentToken":    token,
	}
	if key != "" {
		in["idempotencyKey"] = key
	}
	return in
}

func line(productID string, qty int) map[string]any {
	return map[string]any{"productId": productID, "quantity": qty}
}

// place places an order, retrying while the order service has not yet
// heard of a product that was just created.
func (s *saga) place(c systemtest.Client, in map[string]any) placed {
	s.t.Helper()
	var out placed
	testrun.WaitFor(s.t, "the order service to know the products", func() bool {
		out = placed{}
		c.MustQuery(s.t, placeOrder, map[string]any{"in": in}, &out)
		for _, e := range out.PlaceOrder.UserErrors {
			if e.Code == "NOT_FOUND" {
				return false
			}
		}
		return true
	})
	return out
}

func (s *saga) order(c systemtest.Client, id string) *orderView {
	s.t.Helper()
	var out struct{ Order *orderView }
	c.MustQuery(s.t, `query($id: ID!) { order(id: $id) { `+orderFields+` } }`, map[string]any{"id": id}, &out)
	return out.Order
}

// settle waits until the order reaches status, and returns it.
func (s *saga) settle(c systemtest.Client, id, status string) *orderView {
	s.t.Helper()
	var o *orderView
	testrun.WaitFor(s.t, "order "+id+" to be "+status, func() bool {
		o = s.order(c, id)
		return o != nil && o.Status == status
	})
	return o
}

type stock struct{ OnHand, Reserved, Available int }

func (s *saga) stock(id string) stock {
	s.t.Helper()
	var out struct{ Product *struct{ Stock stock } }
	s.sys.MustQuery(s.t, `query($id: ID!) { product(id: $id) { stock { onHand reserved available } } }`, map[string]any{"id": id}, &out)
	if out.Product == nil {
		s.t.Fatalf("product %s not found", id)
	}
	return out.Product.Stock
}

func (s *saga) waitStock(id string, want stock) {
	s.t.Helper()
	testrun.WaitFor(s.t, fmt.Sprintf("stock %+v", want), func() bool { return s.stock(id) == want })
}

func reason(o *orderView) string {
	if o.StatusReason == nil {
		return ""
	}
	return *o.StatusReason
}

// The happy path, watched live: the customer follows the order over a
// websocket through the router and sees it confirmed; stock is taken and
// the payment succeeded.
func TestOrderIsConfirmedAndWatchedLive(t *testing.T) {
	s := startSaga(t)
	mug := s.product("MUG-SAGA", 1250, 10)
	customer, _ := s.sys.Customer(t, "ada@example.com")

	got := s.place(customer, orderInput("tok_visa", "", line(mug, 3)))
	if got.PlaceOrder.Order == nil {
		t.Fatalf("placeOrder: %+v", got.PlaceOrder.UserErrors)
	}
	id := got.PlaceOrder.Order.ID
	sub := customer.Subscribe(t, `subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status reason } }`, map[string]any{"id": id})
	var seen []string
	for !slices.Contains(seen, "CONFIRMED") {
		m := sub.Next(30 * time.Second)
		if m.Type != "next" || len(m.Payload.Errors) > 0 {
			t.Fatalf("subscription: %+v (seen %v)", m, seen)
		}
		var ev struct {
			OrderStatusChanged struct{ OrderID, Status string }
		}
		_ = json.Unmarshal(m.Payload.Data, &ev)
		if ev.OrderStatusChanged.OrderID != id {
			t.Fatalf("event for another order: %+v", ev)
		}
		seen = append(seen, ev.OrderStatusChanged.Status)
	}
	// The first message is the status when subscribing; then each step, in order.
	path := []string{"PENDING", "AWAITING_PAYMENT", "CONFIRMED"}
	if i := slices.Index(path, seen[0]); i < 0 || !slices.Equal(seen, path[i:]) {
		t.Errorf("subscription saw %v, want a tail of %v", seen, path)
	}

	o := s.settle(customer, id, "CONFIRMED")
	var history []string
	for _, h := range o.History {
		history = append(history, h.Status)
	}
	if !slices.Equal(history, path) || o.Total.Amount != 3750 || o.Payment == nil || o.Payment.Status != "SUCCEEDED" {
		t.Errorf("confirmed order: %+v", o)
	}
	s.waitStock(mug, stock{OnHand: 7, Reserved: 0, Available: 7})
}

func TestOutOfStockIsCancelledAndNotCharged(t *testing.T) {
	s := startSaga(t)
	few := s.product("FEW-1", 500, 1)
	customer, _ := s.sys.Customer(t, "bob@example.com")
	id := s.place(customer, orderInput("tok_visa", "", line(few, 2))).PlaceOrder.Order.ID
	o := s.settle(customer, id, "CANCELLED")
	if reason(o) != "OUT_OF_STOCK" || (o.Payment != nil && o.Payment.Status == "SUCCEEDED") {
		t.Errorf("out of stock: %+v", o)
	}
	s.waitStock(few, stock{OnHand: 1, Reserved: 0, Available: 1})
}

func TestDeclinedCardReleasesStock(t *testing.T) {
	s := startSaga(t)
	lamp := s.product("LAMP-D", 4000, 5)
	customer, _ := s.sys.Customer(t, "carol@example.com")
	id := s.place(customer, orderInput("tok_chargeDeclined", "", line(lamp, 2))).PlaceOrder.Order.ID
	o := s.settle(customer, id, "CANCELLED")
	if reason(o) != "PAYMENT_DECLINED" || o.Payment == nil || o.Payment.Status != "FAILED" {
		t.Errorf("declined: %+v", o)
	}
	s.waitStock(lamp, stock{OnHand: 5, Reserved: 0, Available: 5})
}

func TestCancelAfterConfirmationRefundsAndRestocks(t *testing.T) {
	s := startSaga(t)
	pen := s.product("PEN-R", 300, 4)
	customer, _ := s.sys.Customer(t, "dan@example.com")
	id := s.place(customer, orderInput("tok_visa", "", line(pen, 4))).PlaceOrder.Order.ID
	s.settle(customer, id, "CONFIRMED")
	s.waitStock(pen, stock{OnHand: 0, Reserved: 0, Available: 0})

	var out struct {
		CancelOrder struct {
			Order      *struct{ Status string }
			UserErrors []userError
		}
	}
	customer.MustQuery(t, `mutation($id: ID!) { cancelOrder(input: {orderId: $id}) { order { status } userErrors { field message code } } }`, map[string]any{"id": id}, &out)
	if out.CancelOrder.Order == nil || out.CancelOrder.Order.Status != "CANCELLED" {
		t.Fatalf("cancelOrder: %+v", out.CancelOrder)
	}
	testrun.WaitFor(t, "the refund", func() bool {
		o := s.order(customer, id)
		return o.Payment != nil && o.Payment.Status == "REFUNDED"
	})
	s.waitStock(pen, stock{OnHand: 4, Reserved: 0, Available: 4})
	if o := s.order(customer, id); reason(o) != "CUSTOMER_CANCELLED" {
		t.Errorf("reason %q", reason(o))
	}
}

// Twenty customers race for the last unit: exactly one wins.
func TestRaceForTheLastUnit(t *testing.T) {
	s := startSaga(t)
	last := s.product("LAST-1", 999, 1)
	// Make sure the order service knows the product before the race.
	warm, _ := s.sys.Customer(t, "warm@example.com")
	s.settle(warm, s.place(warm, orderInput("tok_chargeDeclined", "", line(last, 1))).PlaceOrder.Order.ID, "CANCELLED")
	s.waitStock(last, stock{OnHand: 1, Reserved: 0, Available: 1})

	ids := make([]string, 20)
	clients := make([]systemtest.Client, 20)
	for i := range clients {
		clients[i], _ = s.sys.Customer(t, fmt.Sprintf("racer%d@example.com", i))
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var out placed
			clients[i].MustQuery(t, placeOrder, map[string]any{"in": orderInput("tok_visa", "", line(last, 1))}, &out)
			if out.PlaceOrder.Order != nil {
				ids[i] = out.PlaceOrder.Order.ID
			}
		})
	}
	wg.Wait()
	confirmed, outOfStock := 0, 0
	for i, id := range ids {
		if id == "" {
			t.Fatalf("order %d not placed", i)
		}
		var o *orderView
		testrun.WaitFor(t, "order "+id+" to settle", func() bool {
			o = s.order(clients[i], id)
			return o.Status == "CONFIRMED" || o.Status == "CANCELLED"
		})
		switch {
		case o.Status == "CONFIRMED":
			confirmed++
		case reason(o) == "OUT_OF_STOCK":
			outOfStock++
		}
	}
	if confirmed != 1 || outOfStock != 19 {
		t.Fatalf("%d confirmed and %d out of stock, want 1 and 19", confirmed, outOfStock)
	}
	s.waitStock(last, stock{OnHand: 0, Reserved: 0, Available: 0})
}

func TestIdempotencyKeyPlacesOneOrder(t *testing.T) {
	s := startSaga(t)
	cup := s.product("CUP-I", 200, 10)
	customer, _ := s.sys.Customer(t, "erin@example.com")
	first := s.place(customer, orderInput("tok_visa", "checkout-42", line(cup, 1)))
	second := s.place(customer, orderInput("tok_visa", "checkout-42", line(cup, 1)))
	if first.PlaceOrder.Order == nil || second.PlaceOrder.Order == nil || first.PlaceOrder.Order.ID != second.PlaceOrder.Order.ID {
		t.Fatalf("two orders for one key: %+v %+v", first, second)
	}
	s.settle(customer, first.PlaceOrder.Order.ID, "CONFIRMED")
	s.waitStock(cup, stock{OnHand: 9, Reserved: 0, Available: 9})
}

// Every saga event delivered a second time changes nothing: same final
// state, one charge, stock taken once.
func TestRedeliveredSagaEventsChangeNothing(t *testing.T) {
	s := startSaga(t)
	mug := s.product("MUG-R", 1000, 5)
	customer, _ := s.sys.Customer(t, "fay@example.com")
	id := s.place(customer, orderInput("tok_visa", "", line(mug, 2))).PlaceOrder.Order.ID
	s.settle(customer, id, "CONFIRMED")
	s.waitStock(mug, stock{OnHand: 3, Reserved: 0, Available: 3})

	// Read every saga event so far and publish each once more.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.sys.Brokers...),
		kgo.ConsumeTopics(events.Topic("order"), events.Topic("inventory"), events.Topic("payment")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == id {
				records = append(records, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
		})
		if len(records) >= 5 { // placed, reserved, two status changes, payment
			cancel()
		}
	}
	cancel()
	if len(records) < 5 {
		t.Fatalf("found %d saga events for the order", len(records))
	}
	before := testrun.CounterSum(t, "mart_inbox_handled_total", map[string]string{"outcome": "duplicate"})
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testrun.WaitFor(t, "the redeliveries to be recognised", func() bool {
		return testrun.CounterSum(t, "mart_inbox_handled_total", map[string]string{"outcome": "duplicate"})-before >= float64(len(records))
	})
	o := s.order(customer, id)
	if o.Status != "CONFIRMED" || len(o.History) != 3 || o.Payment == nil || o.Payment.Status != "SUCCEEDED" {
		t.Errorf("after redelivery: %+v", o)
	}
	if st := s.stock(mug); st != (stock{OnHand: 3, Reserved: 0, Available: 3}) {
		t.Errorf("stock after redelivery: %+v", st)
	}
	var pays struct {
		Payments struct {
			Edges []struct{ Node struct{ Status string } }
		}
	}
	s.admin.MustQuery(t, `{ payments(first: 100) { edges { node { status } } } }`, nil, &pays)
	succeeded := 0
	for _, e := range pays.Payments.Edges {
		if e.Node.Status == "SUCCEEDED" {
			succeeded++
		}
	}
	if succeeded != 1 {
		t.Errorf("%d successful payments, want 1", succeeded)
	}
}

// One customer cannot see, cancel or follow another's order.
func TestCustomersOnlyReachTheirOwnOrders(t *testing.T) {
	s := startSaga(t)
	mug := s.product("MUG-P", 100, 5)
	owner, _ := s.sys.Customer(t, "owner@example.com")
	other, _ := s.sys.Customer(t, "other@example.com")
	id := s.place(owner, orderInput("tok_visa", "", line(mug, 1))).PlaceOrder.Order.ID
	s.settle(owner, id, "CONFIRMED")

	if o := s.order(other, id); o != nil {
		t.Errorf("another customer read the order: %+v", o)
	}
	var cancel struct {
		CancelOrder struct {
			Order      *struct{ ID, Status string }
			UserErrors []userError
		}
	}
	other.MustQuery(t, `mutation($id: ID!) { cancelOrder(input: {orderId: $id}) { order { id status } userErrors { code } } }`, map[string]any{"id": id}, &cancel)
	if cancel.CancelOrder.Order != nil || len(cancel.CancelOrder.UserErrors) != 1 || cancel.CancelOrder.UserErrors[0].Code != "NOT_FOUND" {
		t.Errorf("another customer's cancelOrder: %+v, want NOT_FOUND and no order", cancel.CancelOrder)
	}
	if o := s.order(owner, id); o.Status != "CONFIRMED" {
		t.Errorf("order changed by another customer: %+v", o)
	}
	// gqlgen reports a refused subscription as one result with errors.
	sub := other.Subscribe(t, `subscription($id: ID!) { orderStatusChanged(orderId: $id) { status } }`, map[string]any{"id": id})
	m := sub.Next(10 * time.Second)
	if m.Type == "next" && (len(m.Payload.Errors) == 0 || m.Payload.Errors[0].Code() != "NOT_FOUND") {
		t.Errorf("another customer's subscription: %+v, want NOT_FOUND", m)
	}
	if strings.Contains(string(m.Payload.Data), "CONFIRMED") {
		t.Errorf("subscription leaked data: %s", m.Payload.Data)
	}
}

// Bad orders get userErrors naming the field; nothing is written or
// published.
func TestInvalidOrdersWriteNothing(t *testing.T) {
	s := startSaga(t)
	usd := s.product("USD-1", 100, 5)
	eur := create(t, s.sys, map[string]any{"sku": "EUR-1", "name": "Euro thing", "price": map[string]any{"amount": 100, "currency": "EUR"}}).Product.ID
	customer, _ := s.sys.Customer(t, "gus@example.com")
	// Wait until the order service knows both products: then the only
	// complaint left about this order is its mixed currencies.
	s.place(customer, orderInput("tok_visa", "", line(usd, 1), line(eur, 1)))
	many := make([]any, 51)
	for i := range many {
		many[i] = line(usd, 1)
	}
	cases := []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"zero quantity", orderInput("tok_visa", "", line(usd, 0)), "quantity"},
		{"101 quantity", orderInput("tok_visa", "", line(usd, 101)), "quantity"},
		{"unknown product", orderInput("tok_visa", "", line("0193c1d4-0000-7000-8000-000000000001", 1)), "productId"},
		{"51 lines", orderInput("tok_visa", "", many...), "lines"},
		{"empty token", orderInput("", "", line(usd, 1)), "paymentToken"},
		{"mixed currencies", orderInput("tok_visa", "", line(usd, 1), line(eur, 1)), "lines"},
	}
	for _, c := range cases {
		var out placed
		customer.MustQuery(t, placeOrder, map[string]any{"in": c.in}, &out)
		errs := out.PlaceOrder.UserErrors
		if out.PlaceOrder.Order != nil || len(errs) == 0 || !slices.Contains(errs[0].Field, c.field) {
			t.Errorf("%s: %+v", c.name, out.PlaceOrder)
		}
	}
	var orders struct {
		Orders struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.admin.MustQuery(t, `{ orders(first: 100) { edges { node { id } } } }`, nil, &orders)
	if len(orders.Orders.Edges) != 0 {
		t.Errorf("%d orders written, want none", len(orders.Orders.Edges))
	}
	if n := kafkatest.Count(t, kafka.Cluster{Brokers: s.sys.Brokers}, events.Topic("order")); n != 0 {
		t.Errorf("%d order events published, want none", n)
	}
}
