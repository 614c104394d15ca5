// Package core is the user service's domain: accounts, their passwords and
// roles, sign-in with lockout, rotating refresh tokens, the keys that sign
// access tokens, and the events every change writes through the outbox in
// its own transaction.
package core

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/ptr"
	"github.com/onlinemart/mart/internal/usererror"
)

// Error codes of the user service, next to the shared ones.
const (
	EmailTaken         usererror.Code = "EMAIL_TAKEN"
	InvalidCredentials usererror.Code = "INVALID_CREDENTIALS"
	TooManyAttempts    usererror.Code = "TOO_MANY_ATTEMPTS"
	InvalidToken       usererror.Code = "INVALID_TOKEN"
	WeakPassword       usererror.Code = "WEAK_PASSWORD"
)

// User is an account.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk,type:uuid"`
	Email        string    `bun:"email"` // trimmed and lower-case
	Name         string    `bun:"name"`
	Phone        *string   `bun:"phone"`
	Role         auth.Role `bun:"role"`
	PasswordHash string    `bun:"password_hash"`
	CreatedAt    time.Time `bun:"created_at"`
	UpdatedAt    time.Time `bun:"updated_at"`
}

// IsEntity marks User as a federation entity for gqlgen.
func (User) IsEntity() {}

// Cursor is where the user stands in a listing.
func (u *User) Cursor() page.Cursor { return page.Cursor{Time: u.CreatedAt, ID: u.ID} }

// CanSee reports whether viewer may see the user with id: only the user
// themself and admins can. The zero Principal (not signed in) sees no one.
func CanSee(viewer auth.Principal, id string) bool {
	if viewer.UserID == "" {
		return false
	}
	return viewer.Role == auth.Admin || sameID(viewer.UserID, id)
}

// RegisterInput is what register takes.
type RegisterInput struct {
	Email string `json:"email" validate:"required,max=254,email,user_text,user_visible"`
	// Password is checked by checkPassword: the policy needs the email too.
	Password string  `json:"password"`
	Name     string  `json:"name" validate:"required,max=100,user_text"`
	Phone    *string `json:"phone" validate:"omitnil,user_phone"`
}

// LoginInput is what login takes.
type LoginInput struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// UpdateProfileInput is what updateProfile takes; nil fields stay as they
// are and an empty phone removes it.
type UpdateProfileInput struct {
	Name  *string `json:"name" validate:"omitnil,max=100,user_text"` // and not blank: see validate
	Phone *string `json:"phone" validate:"omitnil,user_phone"`
}

// ChangePasswordInput is what changePassword takes.
type ChangePasswordInput struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// SetRoleInput is what setUserRole takes.
type SetRoleInput struct {
	UserID string    `json:"userId" validate:"required,uuid"`
	Role   auth.Role `json:"role" validate:"oneof=CUSTOMER ADMIN"`
}

// Filter narrows a user listing; nil fields do not filter.
type Filter struct {
	// Search matches part of the email or name, ignoring case.
	Search *string    `json:"search" validate:"omitnil,max=200"`
	Role   *auth.Role `json:"role" validate:"omitnil,oneof=CUSTOMER ADMIN"`
}

var phonePattern = regexp.MustCompile(`^\+?[0-9 ()-]{6,20}$`)

func init() {
	usererror.Register("user_phone", func(s string) bool { return s == "" || phonePattern.MatchString(s) },
		"must be a phone number such as +1 555 0100 (6 to 20 digits, spaces, '(', ')' or '-')")
	// Names and emails end up in mail headers and SMS: no line breaks.
	usererror.Register("user_text", func(s string) bool { return strings.IndexFunc(s, unicode.IsControl) < 0 },
		"must not contain control characters")
	// Emails are typed back at sign-in and shown to people: no invisible
	// formatting (bidi overrides such as U+202E, zero-width characters).
	usererror.Register("user_visible", func(s string) bool { return strings.IndexFunc(s, isFormat) < 0 },
		"must not contain invisible formatting characters")
}

func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// normalizeEmail is the one spelling of an email that is stored and
// compared.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (in *RegisterInput) normalize() {
	in.Email = normalizeEmail(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	if in.Phone != nil {
		if p := strings.TrimSpace(*in.Phone); p == "" {
			in.Phone = nil
		} else {
			in.Phone = &p
		}
	}
}

func (in *UpdateProfileInput) normalize() {
	ptr.TrimSpace(in.Name)
	ptr.TrimSpace(in.Phone)
}

func (in UpdateProfileInput) validate() []usererror.UserError {
	errs := usererror.Validate("input", in)
	// A name may be left out but not removed ("required" would only check
	// that the pointer is set).
	if in.Name != nil && *in.Name == "" {
		errs = append(errs, usererror.New(usererror.Required, "name is required", "input", "name"))
	}
	return errs
}
