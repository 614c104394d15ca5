package graph_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlerr"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/subgraphs/user/graph"
	"github.com/onlinemart/mart/testkit/gqltest"
)

// env is the user subgraph served over HTTP as the runtime serves it:
// tokens verified by the shared middleware, root fields guarded by Access.
type env struct {
	db    *pgtest.Database
	srv   *gqltest.Server
	reads *atomic.Int64 // SELECTs on users
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t, "user")
	keys := gqltest.NewKeys(t)
	counted, reads := gqltest.CountSelects(db.DB, "users")
	accounts := core.NewAccounts(counted, core.Options{Issuer: keys.Issuer, RefreshTokenTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	srv := keys.Serve(t, graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: accounts}}), graph.Access)
	return &env{db: db, srv: srv, reads: reads}
}

func (e *env) client(token string) gqltest.Client {
	return gqltest.Client{URL: e.srv.URL, Token: token}
}

// token issues an access token as the user service would.
func (e *env) token(t *testing.T, p auth.Principal) string {
	t.Helper()
	return e.srv.Keys.Token(t, p)
}

type registered struct {
	Register struct {
		User                      *struct{ ID, Email string }
		AccessToken, RefreshToken *string
		ExpiresAt                 *time.Time
		UserErrors                []userError
	}
}

type userError struct {
	Field   []string
	Message string
	Code    string
}

const registerOp = `mutation($in: RegisterInput!) { register(input: $in) {
	user { id email } accessToken refreshToken expiresAt userErrors { field message code } } }`

func (e *env) register(t *testing.T, email string) (id, token string) {
	t.Helper()
	var out registered
	e.client("").MustQuery(t, registerOp, map[string]any{"in": map[string]any{
		"email": email, "password": "customer password", "name": "Customer"}}, &out)
	if out.Register.User == nil || out.Register.AccessToken == nil {
		t.Fatalf("register %s: %+v", email, out.Register.UserErrors)
	}
	return out.Register.User.ID, *out.Register.AccessToken
}

// A user is visible to themself and to admins only; to anyone else the
// entity is null, without an error and without being looked up.
func TestUsersAreVisibleOnlyToThemselvesAndAdmins(t *testing.T) {
	e := newEnv(t)
	alice, aliceToken := e.register(t, "alice@example.com")
	bob, bobToken := e.register(t, "bob@example.com")
	adminToken := e.token(t, auth.Principal{UserID: "0193c1d4-0000-7000-8000-0000000000ad", Role: auth.Admin})
	missing := "0193c1d4-0000-7000-8000-000000000001"

	entities := func(token string) []string {
		t.Helper()
		var reps []map[string]any
		for _, id := range []string{alice, bob, missing} {
			reps = append(reps, map[string]any{"__typename": "User", "id": id})
		}
		var out struct{ Entities []*struct{ Email string } }
		r := e.client(token).Query(t, `query($r: [_Any!]!) { entities: _entities(representations: $r) { ... on User { email } } }`,
			map[string]any{"r": reps}, &out)
		if len(r.Errors) > 0 {
			t.Fatalf("_entities: %+v", r.Errors)
		}
		emails := make([]string, len(out.Entities))
		for i, u := range out.Entities {
			if u != nil {
				emails[i] = u.Email
			}
		}
		return emails
	}
	before := e.reads.Load()
	if got := entities(""); !slices.Equal(got, []string{"", "", ""}) {
		t.Errorf("anonymous sees %v", got)
	}
	if e.reads.Load() != before {
		t.Error("users were looked up for a caller who may see none")
	}
	for _, c := range []struct {
		token string
		want  []string
	}{
		{aliceToken, []string{"alice@example.com", "", ""}},
		{bobToken, []string{"", "bob@example.com", ""}},
		{adminToken, []string{"alice@example.com", "bob@example.com", ""}},
	} {
		if got := entities(c.token); !slices.Equal(got, c.want) {
			t.Errorf("sees %v, want %v", got, c.want)
		}
	}

	var me struct {
		Me *struct{ ID, Email, Role string }
	}
	e.client("").MustQuery(t, `{ me { id email role } }`, nil, &me)
	if me.Me != nil {
		t.Errorf("anonymous me = %+v", me.Me)
	}
	e.client(aliceToken).MustQuery(t, `{ me { id email role } }`, nil, &me)
	if me.Me == nil || me.Me.ID != alice || me.Me.Role != "CUSTOMER" {
		t.Errorf("alice's me = %+v", me.Me)
	}

	for _, c := range []struct{ token, op, code string }{
		{"", `{ users { edges { cursor } } }`, gqlerr.Unauthenticated},
		{aliceToken, `{ users { edges { cursor } } }`, gqlerr.Forbidden},
		{"", `mutation { updateProfile(input: {name: "X"}) { user { id } } }`, gqlerr.Unauthenticated},
		{"", `mutation { changePassword(input: {currentPassword: "a", newPassword: "b"}) { userErrors { code } } }`, gqlerr.Unauthenticated},
		{aliceToken, fmt.Sprintf(`mutation { setUserRole(input: {userId: %q, role: ADMIN}) { user { id } } }`, alice), gqlerr.Forbidden},
	} {
		r := e.client(c.token).Query(t, c.op, nil, nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != c.code {
			t.Errorf("%s: %+v, want %s", c.op, r.Errors, c.code)
		}
	}

	var set struct {
		SetUserRole struct {
			User       *struct{ Role string }
			UserErrors []userError
		}
	}
	e.client(adminToken).MustQuery(t, fmt.Sprintf(`mutation { setUserRole(input: {userId: %q, role: ADMIN}) { user { role } userErrors { code } } }`, bob), nil, &set)
	if set.SetUserRole.User == nil || set.SetUserRole.User.Role != "ADMIN" {
		t.Errorf("setUserRole: %+v", set.SetUserRole)
	}
}

func TestSessionMutations(t *testing.T) {
	e := newEnv(t)
	anon := e.client("")

	var bad registered
	anon.MustQuery(t, registerOp, map[string]any{"in": map[string]any{
		"email": "not an email", "password": "short", "name": strings.Repeat("x", 101)}}, &bad)
	r := bad.Register
	if r.User != nil || r.AccessToken != nil || r.RefreshToken != nil || r.ExpiresAt != nil {
		t.Errorf("refused registration returned %+v", r)
	}
	var fields []string
	for _, ue := range r.UserErrors {
		fields = append(fields, strings.Join(ue.Field, ".")+":"+ue.Code)
	}
	if want := []string{"input.email:INVALID", "input.name:TOO_LONG", "input.password:WEAK_PASSWORD"}; !slices.Equal(fields, want) {
		t.Errorf("userErrors %v, want %v", fields, want)
	}

	var ok registered
	anon.MustQuery(t, registerOp, map[string]any{"in": map[string]any{
		"email": "Eve@Example.com", "password": "customer password", "name": "Eve", "phone": "+1 555 0100"}}, &ok)
	if ok.Register.User == nil || ok.Register.User.Email != "eve@example.com" || ok.Register.ExpiresAt == nil || ok.Register.UserErrors == nil {
		t.Fatalf("register: %+v", ok.Register)
	}

	var login struct {
		Login struct {
			AccessToken *string
			User        *struct{ ID string }
			UserErrors  []userError
		}
	}
	anon.MustQuery(t, `mutation { login(input: {email: "eve@example.com", password: "wrong password"}) {
		accessToken user { id } userErrors { field message code } } }`, nil, &login)
	if l := login.Login; l.AccessToken != nil || l.User != nil || len(l.UserErrors) != 1 ||
		l.UserErrors[0].Code != "INVALID_CREDENTIALS" || l.UserErrors[0].Field != nil {
		t.Errorf("wrong password: %+v", l)
	}

	refresh := func(token string) (next string, errs []userError) {
		t.Helper()
		var out struct {
			RefreshToken struct {
				AccessToken, RefreshToken *string
				UserErrors                []userError
			}
		}
		anon.MustQuery(t, `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) {
			accessToken refreshToken userErrors { field message code } } }`, map[string]any{"t": token}, &out)
		if out.RefreshToken.RefreshToken != nil {
			next = *out.RefreshToken.RefreshToken
		}
		return next, out.RefreshToken.UserErrors
	}
	next, errs := refresh(*ok.Register.RefreshToken)
	if next == "" || len(errs) != 0 {
		t.Fatalf("refresh: %+v", errs)
	}
	var out struct {
		Logout struct{ UserErrors []userError }
	}
	anon.MustQuery(t, `mutation($t: String!) { logout(input: {refreshToken: $t}) { userErrors { code } } }`, map[string]any{"t": next}, &out)
	if out.Logout.UserErrors == nil || len(out.Logout.UserErrors) != 0 {
		t.Errorf("logout: %+v", out.Logout)
	}
	if _, errs := refresh(next); len(errs) != 1 || errs[0].Code != "INVALID_TOKEN" {
		t.Errorf("refresh after logout: %+v", errs)
	}
}

func TestUsersListIsPaginatedAndFiltered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, name := range []string{"Ann", "Ben 100%", "Cat", "Dan_x", "Eli"} {
		role := auth.Customer
		if i%2 == 0 {
			role = auth.Admin
		}
		u := &core.User{ID: fmt.Sprintf("0193c1d4-0000-7000-8000-%012d", i+1), Email: strings.ToLower(name[:3]) + "@example.com",
			Name: name, Role: role, PasswordHash: "unused", CreatedAt: base.Add(time.Duration(i) * time.Minute), UpdatedAt: base}
		if _, err := e.db.DB.NewInsert().Model(u).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	admin := e.client(e.token(t, auth.Principal{UserID: "0193c1d4-0000-7000-8000-0000000000ad", Role: auth.Admin}))
	list := func(args string) (names []string, end string) {
		t.Helper()
		var out struct {
			Users struct {
				Edges []struct {
					Node struct{ Name string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		admin.MustQuery(t, `{ users`+args+` { edges { node { name } } pageInfo { hasNextPage endCursor } } }`, nil, &out)
		for _, e := range out.Users.Edges {
			names = append(names, e.Node.Name)
		}
		if out.Users.PageInfo.HasNextPage {
			end = *out.Users.PageInfo.EndCursor
		}
		return names, end
	}
	var all []string
	for cursor := ""; ; {
		args := "(first: 2)"
		if cursor != "" {
			args = fmt.Sprintf("(first: 2, after: %q)", cursor)
		}
		names, next := list(args)
		all = append(all, names...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if want := []string{"Eli", "Dan_x", "Cat", "Ben 100%", "Ann"}; !slices.Equal(all, want) {
		t.Errorf("pages: %v, want %v", all, want)
	}
	for args, want := range map[string][]string{
		`(filter: {search: "%"})`:                   {"Ben 100%"},
		`(filter: {search: "_"})`:                   {"Dan_x"},
		`(filter: {search: "EXAMPLE.COM"})`:         {"Eli", "Dan_x", "Cat", "Ben 100%", "Ann"},
		`(filter: {role: ADMIN})`:                   {"Eli", "Cat", "Ann"},
		`(filter: {search: "BEN", role: CUSTOMER})`: {"Ben 100%"},
		`(filter: {search: "cat", role: CUSTOMER})`: nil,
	} {
		if got, _ := list(args); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", args, got, want)
		}
	}
	for _, args := range []string{`(first: 101)`, `(after: "nope")`, `(filter: {search: "` + strings.Repeat("s", 201) + `"})`} {
		r := admin.Query(t, `{ users`+args+` { edges { cursor } } }`, nil, nil)
		if len(r.Errors) != 1 || r.Errors[0].Code() != gqlerr.BadUserInput {
			t.Errorf("%s: %+v", args, r.Errors)
		}
	}
}
