package graph_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/graph"
	"github.com/onlinemart/mart/subgraphs/notification/notifytest"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// env is the notification subgraph served over HTTP as the runtime serves
// it, delivering email to a test SMTP server.
type env struct {
	t     *testing.T
	db    *pgtest.Database
	smtp  *notifytest.SMTPServer
	notes *core.Notifications
	srv   *gqltest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t, "notification")
	smtp := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	email, err := core.NewSMTPSender(core.SMTPOptions{Addr: smtp.Addr, From: "Online Mart <no-reply@mart.test>"})
	if err != nil {
		t.Fatal(err)
	}
	notes := core.NewNotifications(db.DB,
		core.Options{Senders: map[core.Channel]core.Sender{core.Email: email}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	srv := gqltest.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: notes}}), graph.Access)
	return &env{t: t, db: db, smtp: smtp, notes: notes, srv: srv}
}

// register delivers UserRegistered for a new customer and returns them.
func (e *env) register(name string) auth.Principal {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	m := &userv1.UserRegistered{UserId: id, Email: id[24:] + "@example.com", Name: name, RegisteredAt: timestamppb.Now()}
	meta := events.Meta{ID: events.NewID(), Type: events.TypeOf(m), Time: time.Now()}
	if err := e.db.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		return e.notes.OnUserRegistered(ctx, tx, meta, m)
	}); err != nil {
		e.t.Fatal(err)
	}
	return auth.Principal{UserID: id, Role: auth.Customer}
}

// work sends everything due.
func (e *env) work() {
	e.t.Helper()
	for {
		worked, err := e.notes.ProcessNext(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if !worked {
			return
		}
	}
}

type notificationView struct {
	ID, Channel, Category, Template, Recipient, Status string
	Subject, LastError, ResendOf                       *string
	Attempts                                           int
	SentAt                                             *time.Time
	CreatedAt                                          time.Time
}

type connection struct {
	Edges []struct {
		Node   notificationView
		Cursor string
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

const notificationsOp = `query($r: [_Any!]!, $first: Int, $after: String) { _entities(representations: $r) {
	... on User { id notifications(first: $first, after: $after) {
		edges { node { id channel category template recipient subject status attempts lastError sentAt createdAt resendOf } cursor }
		pageInfo { hasNextPage endCursor } } } } }`

// notifications asks for userID's notifications as viewer.
func (e *env) notifications(viewer auth.Principal, userID string, vars map[string]any) (*connection, gqltest.Response) {
	e.t.Helper()
	if vars == nil {
		vars = map[string]any{}
	}
	vars["r"] = []map[string]any{{"__typename": "User", "id": userID}}
	var out struct {
		Entities []*struct {
			ID            string
			Notifications *connection
		} `json:"_entities"`
	}
	r := e.srv.As(viewer).Query(e.t, notificationsOp, vars, &out)
	if len(out.Entities) != 1 || out.Entities[0] == nil {
		return nil, r
	}
	return out.Entities[0].Notifications, r
}

// A user sees their own notifications; admins see anyone's, with the last
// error; other customers get FORBIDDEN, and anonymous callers
// UNAUTHENTICATED.
func TestNotificationsAreVisibleToTheUserAndAdmins(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("Alice"), e.register("Bob")
	e.work()
	if _, err := e.db.DB.NewRaw(`UPDATE notifications SET last_error = 'smtp: 451 try later' WHERE user_id = ?`,
		alice.UserID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}

	conn, r := e.notifications(alice, alice.UserID, nil)
	if len(r.Errors) > 0 || conn == nil || len(conn.Edges) != 1 {
		t.Fatalf("alice's own: %+v %+v", conn, r.Errors)
	}
	n := conn.Edges[0].Node
	if n.Channel != "EMAIL" || n.Category != "ACCOUNT" || n.Template != "WELCOME" || n.Status != "SENT" ||
		n.Attempts != 1 || n.SentAt == nil || n.Subject == nil || *n.Subject != "Welcome to Online Mart, Alice" ||
		n.LastError != nil || n.ResendOf != nil || n.CreatedAt.IsZero() {
		t.Errorf("alice sees %+v", n)
	}

	admin := auth.Principal{UserID: uuid.NewString(), Role: auth.Admin}
	conn, r = e.notifications(admin, alice.UserID, nil)
	if len(r.Errors) > 0 || len(conn.Edges) != 1 || conn.Edges[0].Node.LastError == nil {
		t.Errorf("admin sees %+v %+v", conn, r.Errors)
	}

	for _, c := range []struct {
		viewer auth.Principal
		code   string
	}{{bob, gqlerr.Forbidden}, {auth.Principal{}, gqlerr.Unauthenticated}} {
		conn, r := e.notifications(c.viewer, alice.UserID, nil)
		if conn != nil || len(r.Errors) != 1 || r.Errors[0].Code() != c.code {
			t.Errorf("as %+v: %+v %+v, want %s", c.viewer, conn, r.Errors, c.code)
		}
	}
}

// The list pages newest first with cursors.
func TestNotificationsPage(t *testing.T) {
	e := newEnv(t)
	alice := e.register("Alice")
	// Two more, as re-sends of the first.
	admin := auth.Principal{UserID: uuid.NewString(), Role: auth.Admin}
	e.work()
	first, _ := e.notifications(alice, alice.UserID, nil)
	for range 2 {
		e.resend(admin, first.Edges[0].Node.ID)
		e.work()
	}
	var seen []string
	var after any
	for range 5 {
		conn, r := e.notifications(alice, alice.UserID, map[string]any{"first": 2, "after": after})
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		for _, edge := range conn.Edges {
			seen = append(seen, edge.Node.ID)
		}
		if !conn.PageInfo.HasNextPage {
			break
		}
		after = *conn.PageInfo.EndCursor
	}
	if len(seen) != 3 || seen[2] != first.Edges[0].Node.ID {
		t.Errorf("pages list %v, want 3 ending with the original %s", seen, first.Edges[0].Node.ID)
	}
	_, r := e.notifications(alice, alice.UserID, map[string]any{"first": 101})
	if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.BadUserInput {
		t.Errorf("first: 101: %+v", r.Errors)
	}
}

type resendPayload struct {
	ResendNotification struct {
		Notification *notificationView
		UserErrors   []struct {
			Field   []string
			Code    string
			Message string
		}
	}
}

const resendOp = `mutation($id: ID!) { resendNotification(input: {notificationId: $id}) {
	notification { id status template recipient subject attempts resendOf }
	userErrors { field code message } } }`

func (e *env) resend(viewer auth.Principal, id string) (resendPayload, gqltest.Response) {
	e.t.Helper()
	var out resendPayload
	r := e.srv.As(viewer).Query(e.t, resendOp, map[string]any{"id": id}, &out)
	return out, r
}

// An admin re-sends a notification as a new queued copy, delivered like
// any other; customers may not; unknown or queued ones are user errors.
func TestAdminResends(t *testing.T) {
	e := newEnv(t)
	alice := e.register("Alice")
	admin := auth.Principal{UserID: uuid.NewString(), Role: auth.Admin}
	conn, _ := e.notifications(alice, alice.UserID, nil)
	orig := conn.Edges[0].Node

	out, r := e.resend(admin, orig.ID)
	if errs := out.ResendNotification.UserErrors; len(r.Errors) > 0 || len(errs) != 1 || errs[0].Code != "INVALID" {
		t.Errorf("re-sending a queued notification: %+v %+v", errs, r.Errors)
	}
	e.work()

	if _, r := e.resend(alice, orig.ID); len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Forbidden {
		t.Errorf("customer re-sends: %+v", r.Errors)
	}
	for id, code := range map[string]string{uuid.NewString(): "NOT_FOUND", "bogus": "INVALID"} {
		out, _ := e.resend(admin, id)
		if errs := out.ResendNotification.UserErrors; len(errs) != 1 || errs[0].Code != code ||
			len(errs[0].Field) != 2 || errs[0].Field[1] != "notificationId" || out.ResendNotification.Notification != nil {
			t.Errorf("re-send %s: %+v, want %s", id, out.ResendNotification, code)
		}
	}

	out, r = e.resend(admin, orig.ID)
	copied := out.ResendNotification.Notification
	if len(r.Errors) > 0 || copied == nil || copied.ID == orig.ID || copied.Status != "QUEUED" || copied.Attempts != 0 ||
		copied.ResendOf == nil || *copied.ResendOf != orig.ID || copied.Template != "WELCOME" || *copied.Subject != *orig.Subject {
		t.Fatalf("re-send: %+v %+v", copied, r.Errors)
	}
	e.work()
	mails := e.smtp.Mails()
	if len(mails) != 2 || mails[1].To[0] != orig.Recipient {
		t.Fatalf("%d mails, want the original and the copy", len(mails))
	}
	if a, b := mails[0].Parse(t), mails[1].Parse(t); a.Subject != b.Subject || a.Parts["text/plain"] != b.Parts["text/plain"] ||
		a.Header.Get("Message-Id") == b.Header.Get("Message-Id") {
		t.Errorf("the copy differs: %q / %q", a.Subject, b.Subject)
	}
	conn, _ = e.notifications(alice, alice.UserID, nil)
	if len(conn.Edges) != 2 || conn.Edges[0].Node.Status != "SENT" {
		t.Errorf("alice now has %+v", conn.Edges)
	}
}

type prefs struct {
	Account, OrderUpdates, Marketing struct{ Email, SMS bool }
}

const prefsFields = `account { email sms } orderUpdates { email sms } marketing { email sms }`

// The signed-in user reads and changes their own preferences; anonymous
// callers may not.
func TestPreferences(t *testing.T) {
	e := newEnv(t)
	alice := e.srv.As(e.register("Alice"))

	var got struct{ NotificationPreferences prefs }
	alice.MustQuery(t, `{ notificationPreferences { `+prefsFields+` } }`, nil, &got)
	p := got.NotificationPreferences
	if !p.Account.Email || p.Account.SMS || !p.OrderUpdates.Email || p.OrderUpdates.SMS || p.Marketing.Email || p.Marketing.SMS {
		t.Errorf("defaults %+v", p)
	}

	var out struct {
		UpdateNotificationPreferences struct {
			Preferences *prefs
			UserErrors  []struct{ Code string }
		}
	}
	alice.MustQuery(t, `mutation { updateNotificationPreferences(input: {orderUpdates: {sms: true}, marketing: {email: true}}) {
		preferences { `+prefsFields+` } userErrors { code } } }`, nil, &out)
	p2 := out.UpdateNotificationPreferences.Preferences
	if p2 == nil || !p2.OrderUpdates.SMS || !p2.OrderUpdates.Email || !p2.Marketing.Email || p2.Marketing.SMS || !p2.Account.Email ||
		len(out.UpdateNotificationPreferences.UserErrors) != 0 {
		t.Errorf("after update %+v", out.UpdateNotificationPreferences)
	}
	alice.MustQuery(t, `{ notificationPreferences { `+prefsFields+` } }`, nil, &got)
	if got.NotificationPreferences != *p2 {
		t.Errorf("read back %+v, want %+v", got.NotificationPreferences, *p2)
	}

	anon := e.srv.As(auth.Principal{})
	for _, op := range []string{
		`{ notificationPreferences { account { email } } }`,
		`mutation { updateNotificationPreferences(input: {}) { userErrors { code } } }`,
	} {
		if r := anon.Query(t, op, nil, nil); len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.Unauthenticated {
			t.Errorf("anonymous %s: %+v", op, r.Errors)
		}
	}
}
