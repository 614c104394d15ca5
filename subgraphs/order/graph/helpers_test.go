package graph_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/live"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	productv1 "github.com/onlinemart/mart/proto/product/v1"
	"github.com/onlinemart/mart/subgraphs/order/core"
	"github.com/onlinemart/mart/subgraphs/order/graph"
	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// env is the order subgraph served over HTTP as the runtime serves it:
// tokens verified by the shared middleware, root fields guarded by Access.
// With Kafka, the outbox relay can publish and the live feed runs.
type env struct {
	t       *testing.T
	db      *pgtest.Database
	orders  *core.Orders
	srv     *gqltest.Server
	reads   *atomic.Int64 // SELECTs on orders
	cluster kafka.Cluster
	log     *slog.Logger
}

var (
	alice = auth.Principal{UserID: "0193c1d4-0000-7000-8000-00000000a11c", Role: auth.Customer}
	bob   = auth.Principal{UserID: "0193c1d4-0000-7000-8000-000000000b0b", Role: auth.Customer}
	admin = auth.Principal{UserID: "0193c1d4-0000-7000-8000-0000000000ad", Role: auth.Admin}
)

func newEnv(t *testing.T, withKafka bool) *env {
	t.Helper()
	db := pgtest.New(t, "order")
	log := slog.New(slog.NewTextHandler(t.Output(), nil)) // shown on failure
	counted, reads := gqltest.CountSelects(db.DB, "orders")
	e := &env{t: t, db: db, orders: core.NewOrders(counted, core.Options{Logger: log}), log: log, reads: reads}
	resolver := &graph.Resolver{Store: e.orders}
	if withKafka {
		e.cluster = kafkatest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := kafka.EnsureTopics(ctx, kafkatest.Client(t, e.cluster), 3, events.Topic("order")); err != nil {
			t.Fatal(err)
		}
		resolver.Changes = live.NewFeed(e.cluster, events.Topic("order"), log)
		testrun.Background(t, resolver.Changes.Run)
	}
	e.srv = gqltest.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: resolver}), graph.Access)
	return e
}

// startRelay publishes the outbox to Kafka until the returned stop.
func (e *env) startRelay() (stop func()) {
	e.t.Helper()
	relay, err := outbox.NewRelay(e.db.DB, e.db.URL, kafkatest.Client(e.t, e.cluster), outbox.Options{Logger: e.log, PollInterval: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return testrun.Background(e.t, relay.Run)
}

func (e *env) token(p auth.Principal) string {
	e.t.Helper()
	return e.srv.Token(p)
}

// as is a client acting for p; the zero principal is anonymous.
func (e *env) as(p auth.Principal) gqltest.Client {
	e.t.Helper()
	return e.srv.As(p)
}

// handle runs an event handler in a transaction, as the inbox does.
func (e *env) handle(fn func(ctx context.Context, tx bun.Tx) error) {
	e.t.Helper()
	if err := e.db.DB.RunInTx(context.Background(), nil, fn); err != nil {
		e.t.Fatal(err)
	}
}

// product adds a product to the catalog copy, as its ProductCreated would.
func (e *env) product(name string, amount int64) string {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	now := timestamppb.Now()
	e.handle(func(ctx context.Context, tx bun.Tx) error {
		return e.orders.OnProductCreated(ctx, tx, events.Meta{ID: events.NewID()}, &productv1.ProductCreated{Product: &productv1.Product{
			Id: id, Name: name, Price: &productv1.Money{Amount: amount, Currency: "EUR"}, Active: true, CreatedAt: now, UpdatedAt: now}})
	})
	return id
}

// place places an order of one unit of productID for p through the API.
func (e *env) place(p auth.Principal, productID string) string {
	e.t.Helper()
	var out struct {
		PlaceOrder struct {
			Order      *struct{ ID string }
			UserErrors []userError
		}
	}
	e.as(p).MustQuery(e.t, placeOp, map[string]any{"in": placeInput(productID, 1)}, &out)
	if out.PlaceOrder.Order == nil {
		e.t.Fatalf("placeOrder: %+v", out.PlaceOrder.UserErrors)
	}
	return out.PlaceOrder.Order.ID
}

const placeOp = `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) {
	order { id status statusReason total { amount currency } createdAt updatedAt
		lines { product { id } quantity unitPrice { amount currency } lineTotal { amount currency } }
		shippingAddress { name line1 line2 city postalCode country }
		history { status reason at } }
	userErrors { field message code } } }`

func placeInput(productID string, quantity int) map[string]any {
	return map[string]any{
		"lines":           []any{map[string]any{"productId": productID, "quantity": quantity}},
		"shippingAddress": map[string]any{"name": "Alice Doe", "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"},
		"paymentToken":    "tok_visa",
	}
}

type userError struct {
	Field   []string
	Message string
	Code    string
}

type money struct {
	Amount   int64
	Currency string
}

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subscription is one subscribe operation over its own websocket.
type subscription struct {
	t    *testing.T
	ctx  context.Context
	conn *websocket.Conn
}

// subscribe follows the status of order id (followOp) as p (anonymous for
// the zero principal).
func (e *env) subscribe(p auth.Principal, id string) *subscription {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	header := http.Header{}
	if p.UserID != "" {
		header.Set("Authorization", "Bearer "+e.token(p))
	}
	conn, _, err := websocket.Dial(ctx, strings.Replace(e.srv.URL, "http://", "ws://", 1),
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { conn.CloseNow() })
	s := &subscription{t: e.t, ctx: ctx, conn: conn}
	s.send(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)})
	if m := s.read(); m.Type != "connection_ack" {
		e.t.Fatalf("want connection_ack, got %+v", m)
	}
	payload, _ := json.Marshal(map[string]any{"query": followOp, "variables": map[string]any{"id": id}})
	s.send(wsMessage{ID: "1", Type: "subscribe", Payload: payload})
	return s
}

func (s *subscription) send(m wsMessage) {
	s.t.Helper()
	if err := wsjson.Write(s.ctx, s.conn, m); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

// read returns the next message, skipping keep-alives.
func (s *subscription) read() wsMessage {
	s.t.Helper()
	for {
		var m wsMessage
		if err := wsjson.Read(s.ctx, s.conn, &m); err != nil {
			s.t.Fatalf("read: %v", err)
		}
		if m.Type != "ping" && m.Type != "pong" {
			return m
		}
	}
}
