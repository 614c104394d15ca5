package core_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/user/core"
)

func TestRegisterSignsInAndEmailsAreUniqueIgnoringCase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.register("  Ada@Example.COM ", "Ada Lovelace")
	if s.User.Email != "ada@example.com" || s.User.Role != auth.Customer || s.User.Name != "Ada Lovelace" {
		t.Errorf("user = %+v", s.User)
	}
	p := e.principal(s)
	if p.UserID != s.User.ID || p.Role != auth.Customer || p.SessionID == "" {
		t.Errorf("principal = %+v", p)
	}
	if s.RefreshToken == "" || !s.ExpiresAt.After(s.User.CreatedAt) {
		t.Errorf("session = %+v", s)
	}

	_, errs, err := e.accounts.Register(ctx, core.RegisterInput{Email: "ADA@example.com", Password: "another password", Name: "Impostor"})
	want := []usererror.UserError{{Field: []string{"input", "email"}, Message: "an account with this email already exists", Code: core.EmailTaken}}
	if err != nil || !reflect.DeepEqual(errs, want) {
		t.Fatalf("duplicate: %v %+v", err, errs)
	}

	if s, errs := e.login("ADA@EXAMPLE.com ", password); errs != nil || s.User.ID != p.UserID {
		t.Fatalf("login: %+v", errs)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM users`); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	if got := e.outbox(); !slices.Equal(got, []string{"mart.user.v1.UserRegistered"}) {
		t.Errorf("outbox = %v", got)
	}
	var hash string
	_ = e.db.DB.QueryRow(`SELECT password_hash FROM users`).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, password) {
		t.Errorf("stored hash %q", hash)
	}
}

// Bad input is refused field by field and writes nothing; text that looks
// like SQL is only text.
func TestRegisterValidatesAndWritesNothingOnBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	long := strings.Repeat("n", 10*1024)
	for _, c := range []struct {
		name string
		in   core.RegisterInput
		path []string
		code usererror.Code
	}{
		{"invalid email", core.RegisterInput{Email: "not-an-email", Password: password, Name: "A"}, []string{"input", "email"}, usererror.Invalid},
		{"sql email", core.RegisterInput{Email: "x'; DROP TABLE users;--", Password: password, Name: "A"}, []string{"input", "email"}, usererror.Invalid},
		{"long email", core.RegisterInput{Email: long + "@example.com", Password: password, Name: "A"}, []string{"input", "email"}, usererror.TooLong},
		{"short password", core.RegisterInput{Email: "a@example.com", Password: "short", Name: "A"}, []string{"input", "password"}, core.WeakPassword},
		{"password is email", core.RegisterInput{Email: "long.address@example.com", Password: "Long.Address@example.com", Name: "A"}, []string{"input", "password"}, core.WeakPassword},
		{"long password", core.RegisterInput{Email: "a@example.com", Password: strings.Repeat("p", 129), Name: "A"}, []string{"input", "password"}, usererror.TooLong},
		{"10 KB name", core.RegisterInput{Email: "a@example.com", Password: password, Name: long}, []string{"input", "name"}, usererror.TooLong},
		{"blank name", core.RegisterInput{Email: "a@example.com", Password: password, Name: "   "}, []string{"input", "name"}, usererror.Required},
		{"name with a line break", core.RegisterInput{Email: "a@example.com", Password: password, Name: "A\r\nBcc: x@y.z"}, []string{"input", "name"}, usererror.Invalid},
		{"bad phone", core.RegisterInput{Email: "a@example.com", Password: password, Name: "A", Phone: ptr("call me'; --")}, []string{"input", "phone"}, usererror.Invalid},
	} {
		_, errs, err := e.accounts.Register(ctx, c.in)
		if err != nil || len(errs) != 1 || !slices.Equal(errs[0].Field, c.path) || errs[0].Code != c.code {
			t.Errorf("%s: %v %+v, want %s on %v", c.name, err, errs, c.code, c.path)
		}
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM users`) + e.db.Count(e.t, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}

	name := `Robert'); DROP TABLE users;--`
	s := e.register("bobby@example.com", name)
	if got, _ := e.accounts.Get(ctx, s.User.ID); got == nil || got.Name != name {
		t.Errorf("stored name %+v, want it literally", got)
	}
	if _, errs, _ := e.accounts.Register(ctx, core.RegisterInput{Email: "p@example.com", Password: password, Name: "P", Phone: ptr("+1 (555) 010-0100")}); errs != nil {
		t.Errorf("good phone refused: %+v", errs)
	}
}

// An unknown email and a wrong password get the same answer; five failures
// lock the email, known or not, until the lock expires; success resets.
func TestLoginFailuresLookAlikeAndLockOut(t *testing.T) {
	e := newEnv(t)
	e.register("grace@example.com", "Grace")

	_, unknown := e.login("nobody@example.com", password)
	_, wrong := e.login("grace@example.com", "wrong password")
	want := []usererror.UserError{{Message: "the email or password is incorrect", Code: core.InvalidCredentials}}
	if !reflect.DeepEqual(unknown, want) || !reflect.DeepEqual(wrong, want) {
		t.Fatalf("unknown email: %+v, wrong password: %+v, want both %+v", unknown, wrong, want)
	}
	for _, email := range []string{"grace@example.com", "nobody@example.com"} {
		for i := 2; i <= core.MaxFailures; i++ {
			_, errs := e.login(email, "wrong password")
			want := core.InvalidCredentials
			if i == core.MaxFailures {
				want = core.TooManyAttempts
			}
			if !slices.Equal(codes(errs), []usererror.Code{want}) {
				t.Fatalf("%s failure %d: %+v, want %s", email, i, errs, want)
			}
		}
	}
	if _, errs := e.login("Grace@example.com", password); !slices.Equal(codes(errs), []usererror.Code{core.TooManyAttempts}) {
		t.Fatalf("locked out, right password: %+v", errs)
	}

	// The lock expires.
	if _, err := e.db.DB.Exec(`UPDATE login_attempts SET locked_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, errs := e.login("grace@example.com", password); errs != nil {
		t.Fatalf("after the lock: %+v", errs)
	}
	if n := e.db.Count(e.t, `SELECT count(*) FROM login_attempts WHERE email = 'grace@example.com'`); n != 0 {
		t.Errorf("success kept %d failure rows", n)
	}
	// An expired lock starts the count afresh.
	if _, errs := e.login("nobody@example.com", "wrong password"); !slices.Equal(codes(errs), []usererror.Code{core.InvalidCredentials}) {
		t.Errorf("after an expired lock: %+v", errs)
	}
	if n := e.db.Count(e.t, `SELECT failures FROM login_attempts WHERE email = 'nobody@example.com'`); n != 1 {
		t.Errorf("failures = %d, want 1", n)
	}
}

func TestRefreshRotatesAndReuseRevokesTheSession(t *testing.T) {
	e := newEnv(t)
	s0 := e.register("linus@example.com", "Linus")
	s1, code := e.refresh(s0.RefreshToken)
	if code != "" {
		t.Fatalf("refresh: %s", code)
	}
	if s1.RefreshToken == s0.RefreshToken || e.principal(s1).SessionID != e.principal(s0).SessionID {
		t.Fatalf("refresh must rotate the token within the session")
	}
	s2, code := e.refresh(s1.RefreshToken)
	if code != "" {
		t.Fatalf("second refresh: %s", code)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s2.RefreshToken)
	sum := sha256.Sum256(raw)
	if e.db.Count(e.t, `SELECT count(*) FROM refresh_tokens WHERE token_hash = ?`, raw) != 0 ||
		e.db.Count(e.t, `SELECT count(*) FROM refresh_tokens WHERE token_hash = ?`, sum[:]) != 1 {
		t.Fatal("tokens must be stored as their SHA-256 only")
	}

	// s0 was used already: someone replays it. The session ends for both.
	if _, code := e.refresh(s0.RefreshToken); code != core.InvalidToken {
		t.Fatalf("reused token: %q, want INVALID_TOKEN", code)
	}
	if _, code := e.refresh(s2.RefreshToken); code != core.InvalidToken {
		t.Fatalf("the session's latest token after reuse: %q, want INVALID_TOKEN", code)
	}

	for _, bad := range []string{"", "garbage", strings.Repeat("A", 43)} {
		if _, code := e.refresh(bad); code != core.InvalidToken {
			t.Errorf("token %q: %q", bad, code)
		}
	}
	s3, _ := e.login("linus@example.com", password)
	if _, err := e.db.DB.Exec(`UPDATE refresh_tokens SET expires_at = now() WHERE revoked_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if _, code := e.refresh(s3.RefreshToken); code != core.InvalidToken {
		t.Errorf("expired token: %q", code)
	}
}

// Two refreshes of one token at once: exactly one gets a new pair.
func TestConcurrentRefreshesOfOneTokenHaveOneWinner(t *testing.T) {
	e := newEnv(t)
	s := e.register("race@example.com", "Race")
	var wg sync.WaitGroup
	results := make([]*core.Session, 4)
	for i := range results {
		wg.Go(func() {
			got, errs, err := e.accounts.Refresh(context.Background(), s.RefreshToken)
			if err != nil || (got == nil) == (errs == nil) {
				t.Errorf("refresh: %v %v %+v", got, err, errs)
			}
			results[i] = got
		})
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(results, func(s *core.Session) bool { return s == nil })); n != 1 {
		t.Fatalf("%d refreshes won, want 1", n)
	}
}

func TestLogoutEndsThatSessionOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	phone := e.register("ken@example.com", "Ken")
	laptop, _ := e.login("ken@example.com", password)

	if errs, err := e.accounts.Logout(ctx, phone.RefreshToken); err != nil || errs != nil {
		t.Fatalf("logout: %v %+v", err, errs)
	}
	if _, code := e.refresh(phone.RefreshToken); code != core.InvalidToken {
		t.Errorf("logged-out token refreshed: %q", code)
	}
	if _, code := e.refresh(laptop.RefreshToken); code != "" {
		t.Errorf("the other session ended too: %q", code)
	}
	if errs, err := e.accounts.Logout(ctx, phone.RefreshToken); err != nil || errs != nil {
		t.Errorf("second logout: %v %+v", err, errs)
	}
	if errs, _ := e.accounts.Logout(ctx, "garbage"); !slices.Equal(codes(errs), []usererror.Code{core.InvalidToken}) {
		t.Errorf("unknown token: %+v", errs)
	}
}

func TestChangePasswordEndsTheOtherSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	here := e.register("barbara@example.com", "Barbara")
	there, _ := e.login("barbara@example.com", password)
	caller := e.principal(here)

	for _, c := range []struct {
		in   core.ChangePasswordInput
		path []string
		code usererror.Code
	}{
		{core.ChangePasswordInput{CurrentPassword: "wrong password", NewPassword: "a new passphrase"}, []string{"input", "currentPassword"}, core.InvalidCredentials},
		{core.ChangePasswordInput{CurrentPassword: password, NewPassword: "short"}, []string{"input", "newPassword"}, core.WeakPassword},
		{core.ChangePasswordInput{CurrentPassword: password, NewPassword: "BARBARA@example.com"}, []string{"input", "newPassword"}, core.WeakPassword},
	} {
		errs, err := e.accounts.ChangePassword(ctx, caller, c.in)
		if err != nil || len(errs) != 1 || errs[0].Code != c.code || !slices.Equal(errs[0].Field, c.path) {
			t.Errorf("%+v: %v %+v", c.in, err, errs)
		}
	}
	if errs, err := e.accounts.ChangePassword(ctx, caller, core.ChangePasswordInput{CurrentPassword: password, NewPassword: "a new passphrase"}); err != nil || errs != nil {
		t.Fatalf("change password: %v %+v", err, errs)
	}
	if _, code := e.refresh(there.RefreshToken); code != core.InvalidToken {
		t.Errorf("the other session survived: %q", code)
	}
	if _, code := e.refresh(here.RefreshToken); code != "" {
		t.Errorf("the caller's session ended: %q", code)
	}
	if _, errs := e.login("barbara@example.com", password); !slices.Equal(codes(errs), []usererror.Code{core.InvalidCredentials}) {
		t.Errorf("old password: %+v", errs)
	}
	if _, errs := e.login("barbara@example.com", "a new passphrase"); errs != nil {
		t.Errorf("new password: %+v", errs)
	}
}

func TestUpdateProfileAndSetRoleWriteTheirEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.register("alan@example.com", "Alan").User
	admin := auth.Principal{UserID: "0193c1d4-0000-7000-8000-0000000000ad", Role: auth.Admin}

	got, errs, err := e.accounts.UpdateProfile(ctx, u.ID, core.UpdateProfileInput{Name: ptr(" Alan Turing "), Phone: ptr("+44 20 7946 0000")})
	if err != nil || errs != nil || got.Name != "Alan Turing" || *got.Phone != "+44 20 7946 0000" {
		t.Fatalf("update: %v %+v %+v", err, errs, got)
	}
	if _, errs, _ = e.accounts.UpdateProfile(ctx, u.ID, core.UpdateProfileInput{Name: ptr("Alan Turing")}); errs != nil {
		t.Fatal(errs) // no change, no event
	}
	if _, errs, _ = e.accounts.UpdateProfile(ctx, u.ID, core.UpdateProfileInput{Name: ptr("")}); !slices.Equal(codes(errs), []usererror.Code{usererror.Required}) {
		t.Errorf("blank name: %+v", errs)
	}
	if got, _, _ = e.accounts.UpdateProfile(ctx, u.ID, core.UpdateProfileInput{Phone: ptr("")}); got.Phone != nil {
		t.Errorf("phone not removed: %v", *got.Phone)
	}

	if got, errs, _ = e.accounts.SetRole(ctx, admin, core.SetRoleInput{UserID: u.ID, Role: auth.Admin}); errs != nil || got.Role != auth.Admin {
		t.Fatalf("set role: %+v %+v", errs, got)
	}
	if _, errs, _ = e.accounts.SetRole(ctx, admin, core.SetRoleInput{UserID: u.ID, Role: auth.Admin}); errs != nil {
		t.Fatal(errs) // no change, no event
	}
	self := auth.Principal{UserID: u.ID, Role: auth.Admin}
	if _, errs, _ = e.accounts.SetRole(ctx, self, core.SetRoleInput{UserID: strings.ToUpper(u.ID), Role: auth.Customer}); !slices.Equal(codes(errs), []usererror.Code{usererror.Invalid}) {
		t.Errorf("own role: %+v", errs)
	}
	if _, errs, _ = e.accounts.SetRole(ctx, self, core.SetRoleInput{UserID: "0193c1d4-0000-7000-8000-000000000001", Role: auth.Admin}); !slices.Equal(codes(errs), []usererror.Code{usererror.NotFound}) {
		t.Errorf("unknown user: %+v", errs)
	}

	want := []string{"mart.user.v1.UserRegistered", "mart.user.v1.UserProfileUpdated", "mart.user.v1.UserProfileUpdated", "mart.user.v1.UserRoleChanged"}
	if got := e.outbox(); !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want %v", got, want)
	}
}

func TestEnsureAdminIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.accounts.EnsureAdmin(ctx, "Root@Example.com", "", "admin passphrase")
	if err != nil || first.Role != auth.Admin || first.Email != "root@example.com" {
		t.Fatalf("create: %v %+v", err, first)
	}
	again, err := e.accounts.EnsureAdmin(ctx, "root@example.com", "Other", "another passphrase")
	if err != nil || again.ID != first.ID {
		t.Fatalf("again: %v %+v", err, again)
	}
	if _, errs := e.login("root@example.com", "admin passphrase"); errs != nil {
		t.Errorf("the existing admin's password changed: %+v", errs)
	}

	customer := e.register("promote@example.com", "Soon Admin").User
	for range 2 {
		if u, err := e.accounts.EnsureAdmin(ctx, "promote@example.com", "", "ignored passphrase"); err != nil || u.ID != customer.ID || u.Role != auth.Admin {
			t.Fatalf("promote: %v %+v", err, u)
		}
	}
	if _, err := e.accounts.EnsureAdmin(ctx, "weak@example.com", "", "short"); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("weak password: %v", err)
	}

	// Replicas starting together with the same admin settings.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := e.accounts.EnsureAdmin(ctx, "together@example.com", "", "admin passphrase"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	if n := e.db.Count(e.t, `SELECT count(*) FROM users WHERE role = 'ADMIN'`); n != 3 {
		t.Errorf("%d admins, want 3", n)
	}
	want := []string{"mart.user.v1.UserRegistered", "mart.user.v1.UserRegistered", "mart.user.v1.UserRoleChanged", "mart.user.v1.UserRegistered"}
	if got := e.outbox(); !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want %v", got, want)
	}
}

func TestCanSeeOnlyThemselfUnlessAdmin(t *testing.T) {
	const me, other = "0193c1d4-0000-7000-8000-000000000001", "0193c1d4-0000-7000-8000-000000000002"
	for _, c := range []struct {
		viewer auth.Principal
		id     string
		want   bool
	}{
		{auth.Principal{}, me, false},
		{auth.Principal{}, "", false},
		{auth.Principal{UserID: me, Role: auth.Customer}, me, true},
		{auth.Principal{UserID: me, Role: auth.Customer}, strings.ToUpper(me), true},
		{auth.Principal{UserID: me, Role: auth.Customer}, other, false},
		{auth.Principal{UserID: me, Role: auth.Admin}, other, true},
	} {
		if got := core.CanSee(c.viewer, c.id); got != c.want {
			t.Errorf("CanSee(%+v, %s) = %v", c.viewer, c.id, got)
		}
	}
}
