package core

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/jobs"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/uuids"
	orderv1 "github.com/onlinemart/mart/proto/order/v1"
	paymentv1 "github.com/onlinemart/mart/proto/payment/v1"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
)

// Options tune Notifications; zero values take the defaults.
type Options struct {
	// Senders deliver each channel's notifications; a channel without a
	// sender is never recorded.
	Senders map[Channel]Sender
	// MaxAttempts is how many sends a notification gets before it is
	// FAILED; default 6.
	MaxAttempts int
	// InitialBackoff is the wait after the first failed send, doubling
	// after each next one up to MaxBackoff, each with random jitter;
	// defaults 10s and 10m.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// SendTimeout limits one send; default 30s.
	SendTimeout time.Duration
	// Jobs tunes the delivery workers (Run): how many sends may be in
	// flight and how often idle ones poll.
	Jobs   jobs.Options
	Logger *slog.Logger // default slog.Default()
}

// Notifications records what the events it consumes should tell users
// and (Run) delivers it through one Sender per channel.
type Notifications struct {
	db      *bun.DB
	senders map[Channel]Sender
	opts    Options
	log     *slog.Logger
}

// NewNotifications returns the notifications stored in db, delivered
// through opts.Senders.
func NewNotifications(db *bun.DB, opts Options) *Notifications {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 10 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Jobs.Logger = opts.Logger
	return &Notifications{db: db, senders: opts.Senders, opts: opts, log: opts.Logger.With("component", "notifications")}
}

// The handlers run in the inbox's transaction: the notifications an event
// triggers are recorded QUEUED, rendered, in the transaction that marks the
// event handled, so a redelivery records nothing more (and the unique
// (event_id, channel) index says so again). Nothing is sent here: the
// worker (Run) does that outside any transaction.
//
// What a notification needs may not be here yet: the contact comes on
// user.events.v1, and a payment event's user and amount on the order's
// OrderPlaced, on other topics, in any relative order. Such an event is
// parked (parked_events), waiting for that one order or user, and the
// event that brings it replays the parked ones in its own transaction
// (see lookUp for why that cannot race). Nothing expires: every order is
// placed and every user registered on topics the group reads from the
// start, so what a parked event waits for does come.
// Why not return an error so the inbox retries: the consumer handles one
// record at a time, so the event we wait for may sit behind the one
// retrying, and after a few attempts the notification would be
// dead-lettered for nothing. Why not record it and look things up at
// delivery: whether there is an SMS row at all depends on the user's phone
// and preferences, and a payment event's user is unknown without the order.
//
// Preferences are read when the notification is recorded; changing them
// later does not recall what is queued.

// OnUserRegistered records the contact and welcomes the user.
func (n *Notifications) OnUserRegistered(ctx context.Context, tx bun.Tx, meta events.Meta, m *userv1.UserRegistered) error {
	id, err := n.saveContact(ctx, tx, meta, m.GetUserId(), m.GetEmail(), m.GetName(), m.GetPhone(), m.GetRegisteredAt())
	if err != nil {
		return err
	}
	if err := n.notify(ctx, tx, meta, m); err != nil {
		return err
	}
	return n.release(ctx, tx, "user_id", id)
}

// OnUserProfileUpdated updates the contact, unless it already knows a
// newer one.
func (n *Notifications) OnUserProfileUpdated(ctx context.Context, tx bun.Tx, meta events.Meta, m *userv1.UserProfileUpdated) error {
	id, err := n.saveContact(ctx, tx, meta, m.GetUserId(), m.GetEmail(), m.GetName(), m.GetPhone(), m.GetUpdatedAt())
	if err != nil {
		return err
	}
	return n.release(ctx, tx, "user_id", id)
}

// OnOrderPlaced records the order: its user, lines and total.
func (n *Notifications) OnOrderPlaced(ctx context.Context, tx bun.Tx, meta events.Meta, m *orderv1.OrderPlaced) error {
	orderID, ok1 := uuids.Canonical(m.GetOrderId())
	userID, ok2 := uuids.Canonical(m.GetUserId())
	if !ok1 || !ok2 {
		return fmt.Errorf("OrderPlaced %q: malformed order or user id", m.GetOrderId())
	}
	o := &Order{
		OrderID: orderID, UserID: userID, Total: m.GetTotal().GetAmount(), Currency: m.GetTotal().GetCurrency(),
		PlacedAt: eventTime(m.GetPlacedAt(), meta), Lines: make([]Line, len(m.GetLines())),
	}
	for i, l := range m.GetLines() {
		o.Lines[i] = Line{ProductName: l.GetProductName(), Quantity: l.GetQuantity(), UnitPrice: l.GetUnitPrice().GetAmount()}
	}
	if err := lockKey(ctx, tx, "order", orderID); err != nil {
		return err
	}
	// An order is placed once; a repeat under a new event id changes nothing.
	if _, err := tx.NewInsert().Model(o).On("CONFLICT (order_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("record order: %w", err)
	}
	return n.release(ctx, tx, "order_id", orderID)
}

// OnOrderStatusChanged tells the customer their order was confirmed,
// cancelled, shipped or delivered.
func (n *Notifications) OnOrderStatusChanged(ctx context.Context, tx bun.Tx, meta events.Meta, m *orderv1.OrderStatusChanged) error {
	return n.notify(ctx, tx, meta, m)
}

// OnPaymentFailed tells the customer their payment failed, and why.
func (n *Notifications) OnPaymentFailed(ctx context.Context, tx bun.Tx, meta events.Meta, m *paymentv1.PaymentFailed) error {
	return n.notify(ctx, tx, meta, m)
}

// OnPaymentRefunded tells the customer their money is on its way back.
func (n *Notifications) OnPaymentRefunded(ctx context.Context, tx bun.Tx, meta events.Meta, m *paymentv1.PaymentRefunded) error {
	return n.notify(ctx, tx, meta, m)
}

// saveContact upserts a contact from a user event, unless the stored one
// comes from a newer event, and returns the canonical user id.
func (n *Notifications) saveContact(ctx context.Context, tx bun.Tx, meta events.Meta,
	userID, email, name, phone string, at *timestamppb.Timestamp) (string, error) {
	id, ok := uuids.Canonical(userID)
	if !ok {
		return "", fmt.Errorf("%s: user id %q is not a UUID", meta.Type, userID)
	}
	if err := lockKey(ctx, tx, "user", id); err != nil {
		return "", err
	}
	c := &Contact{UserID: id, Email: email, Name: name, Phone: phone, UpdatedAt: eventTime(at, meta)}
	_, err := tx.NewInsert().Model(c).
		On("CONFLICT (user_id) DO UPDATE").
		Set("email = EXCLUDED.email, name = EXCLUDED.name, phone = EXCLUDED.phone, updated_at = EXCLUDED.updated_at").
		Where("?TableAlias.updated_at < EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("save contact: %w", err)
	}
	return id, nil
}

// trigger is what an event asks to tell a user.
type trigger struct {
	template Template
	category Category
	userID   string // "" when only the order knows
	orderID  string // "" when no order is involved
	// needsOrder: the user or the wording comes from the order read model.
	needsOrder bool
	fill       func(d *Data, o *Order) // o is nil unless needsOrder
}

// triggerOf returns the notification msg triggers, or false when none.
func triggerOf(msg proto.Message) (trigger, bool) {
	switch m := msg.(type) {
	case *userv1.UserRegistered:
		return trigger{template: Welcome, category: Account, userID: m.GetUserId(), fill: func(*Data, *Order) {}}, true
	case *orderv1.OrderStatusChanged:
		t := trigger{category: OrderUpdates, userID: m.GetUserId(), orderID: m.GetOrderId(), fill: func(*Data, *Order) {}}
		switch m.GetNewStatus() {
		case orderv1.Status_STATUS_CONFIRMED:
			t.template, t.needsOrder = OrderConfirmed, true
			t.fill = fillOrder
		case orderv1.Status_STATUS_CANCELLED:
			t.template = OrderCancelled
			t.fill = func(d *Data, _ *Order) { d.Reason = CancelReason(m.GetReason()) }
		case orderv1.Status_STATUS_SHIPPED:
			t.template = OrderShipped
		case orderv1.Status_STATUS_DELIVERED:
			t.template = OrderDelivered
		default:
			return trigger{}, false
		}
		// An event without its user (there should be none) waits for the order.
		t.needsOrder = t.needsOrder || t.userID == ""
		return t, true
	case *paymentv1.PaymentFailed:
		return trigger{template: PaymentFailed, category: OrderUpdates, orderID: m.GetOrderId(), needsOrder: true,
			fill: func(d *Data, o *Order) {
				d.Total = FormatMoney(o.Total, o.Currency)
				d.Reason = PaymentFailureReason(m.GetCode(), m.GetReason())
			}}, true
	case *paymentv1.PaymentRefunded:
		return trigger{template: RefundIssued, category: OrderUpdates, orderID: m.GetOrderId(), needsOrder: true,
			fill: func(d *Data, o *Order) {
				d.Amount = FormatMoney(o.Total, o.Currency)
				if a := m.GetAmount(); a != nil && a.GetCurrency() != "" {
					d.Amount = FormatMoney(a.GetAmount(), a.GetCurrency())
				}
			}}, true
	}
	return trigger{}, false
}

// fillOrder puts an order's lines and total in d.
func fillOrder(d *Data, o *Order) {
	d.Total = FormatMoney(o.Total, o.Currency)
	d.Lines = make([]LineView, len(o.Lines))
	for i, l := range o.Lines {
		d.Lines[i] = LineView{
			Name: l.ProductName, Quantity: l.Quantity,
			UnitPrice: FormatMoney(l.UnitPrice, o.Currency), Total: FormatMoney(l.UnitPrice*int64(l.Quantity), o.Currency),
		}
		d.Items += int(l.Quantity)
	}
}

// notify records the notifications msg triggers, one per channel the user
// wants and can be reached on, or parks msg until what it needs arrives.
func (n *Notifications) notify(ctx context.Context, tx bun.Tx, meta events.Meta, msg proto.Message) error {
	t, ok := triggerOf(msg)
	if !ok {
		return nil
	}
	// Every order id is checked, not only the ones looked up: it is
	// recorded in a uuid column, in the spelling the order read model uses.
	if t.orderID != "" || t.needsOrder {
		orderID, ok := uuids.Canonical(t.orderID)
		if !ok {
			return fmt.Errorf("%s: order id %q is not a UUID", meta.Type, t.orderID)
		}
		t.orderID = orderID
	}
	var order *Order
	if t.needsOrder {
		var err error
		if order, err = lookUp(ctx, tx, "order", t.orderID, findOrder); err != nil {
			return err
		}
		if order == nil {
			return n.park(ctx, tx, meta, msg, "order_id", t.orderID)
		}
		t.userID = order.UserID
	}
	userID, ok := uuids.Canonical(t.userID)
	if !ok {
		return fmt.Errorf("%s: user id %q is not a UUID", meta.Type, t.userID)
	}
	contact, err := lookUp(ctx, tx, "user", userID, findContact)
	if err != nil {
		return err
	}
	if contact == nil {
		return n.park(ctx, tx, meta, msg, "user_id", userID)
	}
	prefs, err := preferences(ctx, tx, userID, false)
	if err != nil {
		return err
	}

	d := Data{Name: contact.Name, Email: contact.Email}
	var orderID *string
	if t.orderID != "" {
		d.OrderID, d.OrderRef = t.orderID, orderRef(t.orderID)
		orderID = &t.orderID
	}
	t.fill(&d, order)
	want := prefs.For(t.category)
	at := postgres.Now()
	for _, ch := range []Channel{Email, SMS} {
		to := contact.Email
		if ch == SMS {
			to = contact.Phone
		}
		if to == "" || n.senders[ch] == nil || (ch == Email && !want.Email) || (ch == SMS && !want.SMS) {
			continue // opted out, or no address: no row at all
		}
		c, err := Render(t.template, ch, d)
		if err != nil {
			return err
		}
		row := &Notification{
			ID: newID(), EventID: meta.ID, UserID: userID, OrderID: orderID, Channel: ch, Category: t.category, Template: t.template,
			Recipient: to, Subject: c.Subject, BodyText: c.Text, BodyHTML: c.HTML,
			Status: Queued, NextAttemptAt: &at, CreatedAt: at, UpdatedAt: at,
		}
		if _, err := tx.NewInsert().Model(row).
			On("CONFLICT (event_id, channel) WHERE resend_of IS NULL DO NOTHING").Exec(ctx); err != nil {
			return fmt.Errorf("record notification: %w", err)
		}
	}
	if _, err := tx.NewDelete().TableExpr("parked_events").Where("event_id = ?", meta.ID).Exec(ctx); err != nil {
		return fmt.Errorf("unpark event: %w", err)
	}
	return nil
}

// lookUp finds a read model entry with find. When it is missing, it
// locks its key (see lockKey) and looks again, so that parking the event
// then cannot miss the entry's arrival: a handler that creates the entry
// takes the same lock first, and replays parked events after creating it.
// The lock is only taken when the entry is missing, which also keeps the
// locks of one transaction in one order (order before user): no deadlock.
func lookUp[T any](ctx context.Context, tx bun.Tx, kind, id string,
	find func(context.Context, bun.Tx, string) (*T, error)) (*T, error) {
	v, err := find(ctx, tx, id)
	if err != nil || v != nil {
		return v, err
	}
	if err := lockKey(ctx, tx, kind, id); err != nil {
		return nil, err
	}
	return find(ctx, tx, id)
}

// lockKey takes a transaction-scoped advisory lock on an order or user id.
// Without it, with replicas handling different partitions at once, an
// event could read "no contact", the contact arrive and replay the parked
// events, and only then the event park itself, for ever.
func lockKey(ctx context.Context, tx bun.Tx, kind, id string) error {
	if _, err := tx.NewRaw(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, kind+":"+id).Exec(ctx); err != nil {
		return fmt.Errorf("lock %s %s: %w", kind, id, err)
	}
	return nil
}

func findOrder(ctx context.Context, tx bun.Tx, orderID string) (*Order, error) {
	var os []Order
	if err := tx.NewSelect().Model(&os).Where("order_id = ?", orderID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read order: %w", err)
	}
	if len(os) == 0 {
		return nil, nil
	}
	return &os[0], nil
}

func findContact(ctx context.Context, tx bun.Tx, userID string) (*Contact, error) {
	var cs []Contact
	if err := tx.NewSelect().Model(&cs).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read contact: %w", err)
	}
	if len(cs) == 0 {
		return nil, nil
	}
	return &cs[0], nil
}

// parkedEvent is an event waiting for one order or one user.
type parkedEvent struct {
	bun.BaseModel `bun:"table:parked_events"`

	EventID   string    `bun:"event_id,pk"`
	Type      string    `bun:"type"`
	Payload   []byte    `bun:"payload"`
	EventTime time.Time `bun:"event_time"`
	OrderID   *string   `bun:"order_id,type:uuid"`
	UserID    *string   `bun:"user_id,type:uuid"`
	CreatedAt time.Time `bun:"created_at"`
}

// park keeps msg until the order or user (column) id arrives; parking it
// again (now waiting for something else) replaces what it waited for.
func (n *Notifications) park(ctx context.Context, tx bun.Tx, meta events.Meta, msg proto.Message, column, id string) error {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("park %s: %w", meta.Type, err)
	}
	p := &parkedEvent{EventID: meta.ID, Type: events.TypeOf(msg), Payload: payload, EventTime: meta.Time, CreatedAt: postgres.Now()}
	if p.EventTime.IsZero() {
		p.EventTime = p.CreatedAt
	}
	if column == "order_id" {
		p.OrderID = &id
	} else {
		p.UserID = &id
	}
	_, err = tx.NewInsert().Model(p).
		On("CONFLICT (event_id) DO UPDATE").Set("order_id = EXCLUDED.order_id, user_id = EXCLUDED.user_id").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("park %s: %w", meta.Type, err)
	}
	n.log.InfoContext(ctx, "event parked until its "+column+" is known", "type", p.Type, "event_id", meta.ID, column, id)
	return nil
}

// release replays the events parked until the order or user (column) id
// arrived, oldest first.
func (n *Notifications) release(ctx context.Context, tx bun.Tx, column, id string) error {
	var parked []parkedEvent
	if err := tx.NewSelect().Model(&parked).Where("? = ?", bun.Ident(column), id).
		Order("created_at", "event_id").For("UPDATE").Scan(ctx); err != nil {
		return fmt.Errorf("read parked events: %w", err)
	}
	for _, p := range parked {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(p.Type))
		if err != nil {
			return fmt.Errorf("parked event %s: %w", p.EventID, err)
		}
		msg := mt.New().Interface()
		if err := proto.Unmarshal(p.Payload, msg); err != nil {
			return fmt.Errorf("parked event %s: %w", p.EventID, err)
		}
		meta := events.Meta{ID: p.EventID, Type: p.Type, Time: p.EventTime}
		if err := n.notify(ctx, tx, meta, msg); err != nil {
			return err
		}
	}
	return nil
}

// eventTime is when an event says it happened, else when it was sent.
func eventTime(ts *timestamppb.Timestamp, meta events.Meta) time.Time {
	if ts != nil && ts.IsValid() {
		return ts.AsTime().UTC().Truncate(time.Microsecond)
	}
	if !meta.Time.IsZero() {
		return meta.Time.UTC().Truncate(time.Microsecond)
	}
	return postgres.Now()
}
