package core

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/outbox"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/ptr"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// Accounts registers users, signs them in and out, and changes their
// accounts. Changes other services care about commit together with their
// event in the outbox.
type Accounts struct {
	db         *bun.DB
	events     outbox.Writer
	issuer     *auth.Issuer
	refreshTTL time.Duration
	log        *slog.Logger
}

// Options configure Accounts.
type Options struct {
	// Issuer signs access tokens; nil where none are issued (mart admin).
	Issuer          *auth.Issuer
	RefreshTokenTTL time.Duration
	Logger          *slog.Logger // default slog.Default()
}

// NewAccounts returns the accounts stored in db.
func NewAccounts(db *bun.DB, o Options) *Accounts {
	return &Accounts{db: db, events: outbox.NewWriter("user", Publishes), issuer: o.Issuer, refreshTTL: o.RefreshTokenTTL,
		log: cmp.Or(o.Logger, slog.Default())}
}

// Session is a signed-in user with a fresh pair of tokens.
type Session struct {
	User         *User
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time // when AccessToken expires
}

// Register creates a customer account and signs it in. Bad input and a
// taken email come back as user errors with nothing written.
func (a *Accounts) Register(ctx context.Context, in RegisterInput) (*Session, []usererror.UserError, error) {
	return a.create(ctx, in, auth.Customer, true)
}

func (a *Accounts) create(ctx context.Context, in RegisterInput, role auth.Role, signIn bool) (*Session, []usererror.UserError, error) {
	in.normalize()
	errs := usererror.Validate("input", in)
	errs = append(errs, checkPassword(in.Password, in.Email, "input", "password")...)
	if len(errs) > 0 {
		return nil, errs, nil
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return nil, nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, nil, err
	}
	t := postgres.Now()
	u := &User{ID: id.String(), Email: in.Email, Name: in.Name, Phone: in.Phone, Role: role,
		PasswordHash: hash, CreatedAt: t, UpdatedAt: t}
	s := &Session{User: u}
	err = a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(u).Exec(ctx); err != nil {
			return err
		}
		if err := a.events.Add(ctx, tx, u.ID, registeredEvent(u)); err != nil {
			return err
		}
		if !signIn {
			return nil
		}
		var err error
		s, err = a.signIn(ctx, tx, u, t)
		return err
	})
	if postgres.IsUniqueViolation(err, "users_email_key") {
		return nil, []usererror.UserError{usererror.New(EmailTaken, "an account with this email already exists", "input", "email")}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("register: %w", err)
	}
	return s, nil, nil
}

// signIn starts a session (a new refresh-token family) for u.
func (a *Accounts) signIn(ctx context.Context, db bun.IDB, u *User, t time.Time) (*Session, error) {
	family, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	return a.tokens(ctx, db, u, family.String(), t)
}

// tokens issues a refresh token of family and an access token for u.
func (a *Accounts) tokens(ctx context.Context, db bun.IDB, u *User, family string, t time.Time) (*Session, error) {
	refresh, err := newRefreshToken(ctx, db, u.ID, family, t, a.refreshTTL)
	if err != nil {
		return nil, err
	}
	access, exp, err := a.issuer.Issue(auth.Principal{UserID: u.ID, Role: u.Role, SessionID: family})
	if err != nil {
		return nil, err
	}
	return &Session{User: u, AccessToken: access, RefreshToken: refresh, ExpiresAt: exp}, nil
}

// Login signs a user in by email and password. An unknown email and a
// wrong password get the same answer after the same work; repeated
// failures lock the email for a while.
func (a *Accounts) Login(ctx context.Context, in LoginInput) (*Session, []usererror.UserError, error) {
	email := normalizeEmail(in.Email)
	if email == "" || utf8.RuneCountInString(email) > 254 || utf8.RuneCountInString(in.Password) > MaxPasswordLength {
		return nil, invalidCredentials(), nil // no account can match: not worth a hash or a failure row
	}
	t := postgres.Now()
	if locked, err := lockedOut(ctx, a.db, email, t); err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	} else if locked {
		return nil, tooManyAttempts(), nil
	}
	u, err := a.byEmail(ctx, a.db, email)
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	hash := dummyHash()
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := verifyPassword(in.Password, hash)
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	if !ok || u == nil {
		errs, err := a.failed(ctx, email, t)
		return nil, errs, err
	}
	var s *Session
	err = a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := resetFailures(ctx, tx, email); err != nil {
			return err
		}
		s, err = a.signIn(ctx, tx, u, t)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	return s, nil, nil
}

// failed records a failed password check of email and returns the user
// error to answer with, reported on field.
func (a *Accounts) failed(ctx context.Context, email string, t time.Time, field ...string) ([]usererror.UserError, error) {
	locked, err := recordFailure(ctx, a.db, email, t)
	if err != nil {
		return nil, fmt.Errorf("record failure: %w", err)
	}
	if locked {
		return tooManyAttempts(), nil
	}
	return []usererror.UserError{usererror.New(InvalidCredentials, "the email or password is incorrect", field...)}, nil
}

func invalidCredentials() []usererror.UserError {
	return []usererror.UserError{usererror.New(InvalidCredentials, "the email or password is incorrect")}
}

func tooManyAttempts() []usererror.UserError {
	return []usererror.UserError{usererror.New(TooManyAttempts,
		fmt.Sprintf("too many failed attempts: try again in %d minutes", int(LockoutPeriod.Minutes())))}
}

func invalidToken() []usererror.UserError {
	return []usererror.UserError{usererror.New(InvalidToken, "the refresh token is invalid or expired", "input", "refreshToken")}
}

// Refresh exchanges a refresh token for a new pair: the presented token is
// used up. Presenting a token that was already used means two parties hold
// the session's tokens, so the whole session is revoked.
func (a *Accounts) Refresh(ctx context.Context, token string) (*Session, []usererror.UserError, error) {
	hash, ok := hashToken(strings.TrimSpace(token))
	if !ok {
		return nil, invalidToken(), nil
	}
	t := postgres.Now()
	var s *Session
	err := a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rt := new(refreshToken)
		// The row lock makes concurrent refreshes of one token take turns:
		// the second sees it used.
		err := tx.NewSelect().Model(rt).Where("token_hash = ?", hash).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case rt.RevokedAt != nil || !rt.ExpiresAt.After(t):
			return nil
		case rt.UsedAt != nil:
			a.log.WarnContext(ctx, "refresh token reused: session revoked", "user_id", rt.UserID, "session_id", rt.FamilyID)
			return revokeFamily(ctx, tx, rt.FamilyID, t)
		}
		if _, err := tx.NewUpdate().Model(rt).Set("used_at = ?", t).WherePK().Exec(ctx); err != nil {
			return err
		}
		u, err := a.get(ctx, tx, rt.UserID)
		if err != nil || u == nil {
			return err
		}
		s, err = a.tokens(ctx, tx, u, rt.FamilyID, t) // the role may have changed since
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("refresh token: %w", err)
	}
	if s == nil {
		return nil, invalidToken(), nil
	}
	return s, nil, nil
}

// Logout ends the session of a refresh token: none of its tokens refreshes
// any more. Logging out of an ended session is not an error.
func (a *Accounts) Logout(ctx context.Context, token string) ([]usererror.UserError, error) {
	hash, ok := hashToken(strings.TrimSpace(token))
	if !ok {
		return invalidToken(), nil
	}
	var family string
	err := a.db.NewSelect().Model((*refreshToken)(nil)).Column("family_id").Where("token_hash = ?", hash).Scan(ctx, &family)
	if errors.Is(err, sql.ErrNoRows) {
		return invalidToken(), nil
	}
	if err == nil {
		err = revokeFamily(ctx, a.db, family, postgres.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("logout: %w", err)
	}
	return nil, nil
}

// ChangePassword sets a new password for the caller after checking the
// current one, and ends every other session of theirs: whoever else knew
// the old password is signed out.
func (a *Accounts) ChangePassword(ctx context.Context, caller auth.Principal, in ChangePasswordInput) ([]usererror.UserError, error) {
	u, err := a.get(ctx, a.db, caller.UserID)
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	if u == nil {
		return noUser(caller.UserID), nil
	}
	if errs := checkPassword(in.NewPassword, u.Email, "input", "newPassword"); errs != nil {
		return errs, nil
	}
	// Guessing the current password counts towards the lockout of the email,
	// as it would at sign-in.
	t := postgres.Now()
	if locked, err := lockedOut(ctx, a.db, u.Email, t); err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	} else if locked {
		return tooManyAttempts(), nil
	}
	ok := utf8.RuneCountInString(in.CurrentPassword) <= MaxPasswordLength
	if ok {
		if ok, err = verifyPassword(in.CurrentPassword, u.PasswordHash); err != nil {
			return nil, fmt.Errorf("change password: %w", err)
		}
	}
	if !ok {
		return a.failed(ctx, u.Email, t, "input", "currentPassword")
	}
	hash, err := hashPassword(in.NewPassword)
	if err != nil {
		return nil, err
	}
	err = a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model(u).Set("password_hash = ?", hash).Set("updated_at = ?", t).WherePK().Exec(ctx); err != nil {
			return err
		}
		q := tx.NewUpdate().Model((*refreshToken)(nil)).Set("revoked_at = ?", t).
			Where("user_id = ?", u.ID).Where("revoked_at IS NULL")
		if _, err := uuid.Parse(caller.SessionID); err == nil {
			q.Where("family_id <> ?", caller.SessionID)
		}
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
		return resetFailures(ctx, tx, u.Email)
	})
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	return nil, nil
}

// UpdateProfile changes the name or phone of the user with id. No event is
// written when nothing changed.
func (a *Accounts) UpdateProfile(ctx context.Context, id string, in UpdateProfileInput) (*User, []usererror.UserError, error) {
	in.normalize()
	if errs := in.validate(); errs != nil {
		return nil, errs, nil
	}
	var u *User
	err := a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = lockUser(ctx, tx, id); err != nil || u == nil {
			return err
		}
		changed := false
		if in.Name != nil && *in.Name != u.Name {
			u.Name, changed = *in.Name, true
		}
		if in.Phone != nil && *in.Phone != ptr.Value(u.Phone) {
			u.Phone, changed = nil, true
			if *in.Phone != "" {
				u.Phone = in.Phone
			}
		}
		if !changed {
			return nil
		}
		u.UpdatedAt = postgres.Now()
		if _, err := tx.NewUpdate().Model(u).Column("name", "phone", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return a.events.Add(ctx, tx, u.ID, profileUpdatedEvent(u))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("update profile: %w", err)
	}
	if u == nil {
		return nil, noUser(id), nil
	}
	return u, nil, nil
}

// SetRole grants a user a role. Admins cannot change their own role, so
// the last admin cannot lock everyone out.
func (a *Accounts) SetRole(ctx context.Context, caller auth.Principal, in SetRoleInput) (*User, []usererror.UserError, error) {
	in.UserID = strings.TrimSpace(in.UserID)
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	if sameID(in.UserID, caller.UserID) {
		return nil, []usererror.UserError{usererror.New(usererror.Invalid, "you cannot change your own role", "input", "userId")}, nil
	}
	u, err := a.setRole(ctx, func(q *bun.SelectQuery) { q.Where("id = ?", in.UserID) }, in.Role)
	if err != nil {
		return nil, nil, fmt.Errorf("set role: %w", err)
	}
	if u == nil {
		return nil, noUser(in.UserID, "input", "userId"), nil
	}
	return u, nil, nil
}

// setRole gives the user that where selects the role, writing
// UserRoleChanged if that changes it. It returns nil when there is no such
// user.
func (a *Accounts) setRole(ctx context.Context, where func(*bun.SelectQuery), role auth.Role) (*User, error) {
	var u *User
	err := a.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		found := new(User)
		q := tx.NewSelect().Model(found).For("UPDATE")
		where(q)
		if err := q.Scan(ctx); errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		u = found
		if u.Role == role {
			return nil
		}
		old := u.Role
		u.Role, u.UpdatedAt = role, postgres.Now()
		if _, err := tx.NewUpdate().Model(u).Column("role", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return a.events.Add(ctx, tx, u.ID, roleChangedEvent(u.ID, old, role, u.UpdatedAt))
	})
	return u, err
}

// EnsureAdmin makes sure an admin with email exists: it promotes the
// account that has the email, or creates one with password and name. An
// existing account keeps its password. Running it again changes nothing,
// also when several replicas run it at once.
func (a *Accounts) EnsureAdmin(ctx context.Context, email, name, password string) (*User, error) {
	email = normalizeEmail(email)
	if strings.TrimSpace(name) == "" {
		name = "Admin"
	}
	byEmail := func(q *bun.SelectQuery) { q.Where("lower(email) = ?", email) }
	for attempt := 1; ; attempt++ {
		u, err := a.setRole(ctx, byEmail, auth.Admin)
		if err != nil || u != nil {
			return u, err
		}
		s, errs, err := a.create(ctx, RegisterInput{Email: email, Password: password, Name: name}, auth.Admin, false)
		if err != nil {
			return nil, err
		}
		if len(errs) == 1 && errs[0].Code == EmailTaken && attempt == 1 {
			continue // created meanwhile by another replica: promote that one
		}
		if len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Message
			}
			return nil, fmt.Errorf("admin %s: %s", email, strings.Join(msgs, "; "))
		}
		return s.User, nil
	}
}

// Get returns the user with id, or nil when there is none.
func (a *Accounts) Get(ctx context.Context, id string) (*User, error) { return a.get(ctx, a.db, id) }

func (a *Accounts) get(ctx context.Context, db bun.IDB, id string) (*User, error) {
	id, ok := uuids.Canonical(id)
	if !ok {
		return nil, nil
	}
	u := new(User)
	err := db.NewSelect().Model(u).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}

func (a *Accounts) byEmail(ctx context.Context, db bun.IDB, email string) (*User, error) {
	u := new(User)
	err := db.NewSelect().Model(u).Where("lower(email) = ?", email).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}

// GetMany returns the users with ids in the same order, nil where a user
// does not exist: one query however many ids.
func (a *Accounts) GetMany(ctx context.Context, ids []string) ([]*User, error) {
	return uuids.Lookup(ids, func(valid []string) ([]*User, error) {
		var found []*User
		err := a.db.NewSelect().Model(&found).Where("id IN (?)", bun.List(valid)).Scan(ctx)
		return found, err
	}, func(u *User) string { return u.ID })
}

// List returns a page of users, newest first. A filter that breaks its
// rules is a BAD_USER_INPUT error.
func (a *Accounts) List(ctx context.Context, req page.Request, f Filter) (*page.Page[*User], error) {
	if errs := usererror.Validate("filter", f); errs != nil {
		return nil, usererror.AsError(errs)
	}
	var us []*User
	q := req.Keyset(a.db.NewSelect().Model(&us))
	if f.Search != nil && strings.TrimSpace(*f.Search) != "" {
		pattern := "%" + likeEscaper.Replace(strings.TrimSpace(*f.Search)) + "%"
		q.Where(`(email ILIKE ? OR name ILIKE ?)`, pattern, pattern)
	}
	if f.Role != nil {
		q.Where("role = ?", *f.Role)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	return page.Of(us, req), nil
}

// likeEscaper makes a search string match literally in LIKE (whose default
// escape character is backslash).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// lockUser reads a user FOR UPDATE, so its events enter the outbox in the
// order its changes commit. It returns nil when there is none.
func lockUser(ctx context.Context, tx bun.Tx, id string) (*User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, nil
	}
	u := new(User)
	err := tx.NewSelect().Model(u).Where("id = ?", id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return u, err
}

func noUser(id string, field ...string) []usererror.UserError {
	return []usererror.UserError{usererror.New(usererror.NotFound, "no user with id "+id, field...)}
}

// sameID compares two ids as UUIDs, whatever their spelling.
func sameID(a, b string) bool {
	ua, errA := uuid.Parse(a)
	ub, errB := uuid.Parse(b)
	return errA == nil && errB == nil && ua == ub
}
