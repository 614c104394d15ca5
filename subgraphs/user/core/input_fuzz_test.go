package core

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/usererror/usererrortest"
)

func optional(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

// FuzzRegisterInput: register's input, checked as Accounts.create does
// before hashing and writing. Accepted input holds no control characters
// (names and emails reach mail headers and SMS) and a policy password.
func FuzzRegisterInput(f *testing.F) {
	f.Add(" Ada@Example.com ", "analytical-engine", "Ada", "+44 20 7946 0000", true)
	f.Add("not-an-email", "short", "", "", true)
	f.Add("x'; DROP TABLE users; --@example.com", "x'; DROP TABLE users; --@example.com", "Robert'); DROP TABLE users;--", "555", true)
	f.Add("a@example.com\r\nBcc: victim@example.com", strings.Repeat("p", 129), "Eve\nBcc: x", "+1 (555) 0100", true)
	f.Add("аdmin@mart.test", "{{.Password}}-long", "\u202egnirts", "", false) // Cyrillic а
	f.Add("a@b.c", "          ", strings.Repeat("n", 101), "\x00", true)
	f.Add("evil\u202egro.com@example.com", "long-enough-pw", "Eve", "", false)
	f.Add("ad\u200bmin@mart.test", "long-enough-pw", "Zero\u200dWidth", "", false)
	f.Fuzz(func(t *testing.T, email, password, name, phone string, hasPhone bool) {
		in := RegisterInput{Email: email, Password: password, Name: name, Phone: optional(phone, hasPhone)}
		in.normalize()
		errs := usererror.Validate("input", in)
		errs = append(errs, checkPassword(in.Password, in.Email, "input", "password")...)
		usererrortest.Check(t, errs, WeakPassword)
		if len(errs) > 0 {
			return
		}
		if in.Email != normalizeEmail(in.Email) || in.Name == "" ||
			strings.IndexFunc(in.Email+in.Name, unicode.IsControl) >= 0 || strings.IndexFunc(in.Email, isFormat) >= 0 ||
			utf8.RuneCountInString(in.Password) < MinPasswordLength || utf8.RuneCountInString(in.Password) > MaxPasswordLength {
			t.Fatalf("accepted %+v", in)
		}
		if in.Phone != nil && (strings.TrimSpace(*in.Phone) != *in.Phone || !phonePattern.MatchString(*in.Phone)) {
			t.Fatalf("accepted phone %q", *in.Phone)
		}
	})
}

// FuzzUpdateProfileInput: a name may be changed but not removed; an empty
// phone removes it.
func FuzzUpdateProfileInput(f *testing.F) {
	f.Add("Ada", true, "", true)
	f.Add("   ", true, "not a phone", true)
	f.Add("Eve\r\nBcc: x", true, "+1 555 0100", false)
	f.Add("", false, "(((((((", true)
	f.Fuzz(func(t *testing.T, name string, hasName bool, phone string, hasPhone bool) {
		in := UpdateProfileInput{Name: optional(name, hasName), Phone: optional(phone, hasPhone)}
		in.normalize()
		errs := in.validate()
		usererrortest.Check(t, errs, WeakPassword)
		if len(errs) == 0 && in.Name != nil && (*in.Name == "" || strings.IndexFunc(*in.Name, unicode.IsControl) >= 0) {
			t.Fatalf("accepted name %q", *in.Name)
		}
	})
}

// FuzzChangePasswordInput: the new password meets the policy, checked
// before the current one is (so a weak new password costs no hash).
func FuzzChangePasswordInput(f *testing.F) {
	f.Add("old-password-1", "new-password-1", "ada@example.com")
	f.Add("", "ada@example.com", "ada@example.com")
	f.Add("x", " ADA@example.com ", "ada@example.com")
	f.Add("x", strings.Repeat("ü", 128), "")
	f.Add("x", strings.Repeat("ü", 129), "")
	f.Add("x", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6", "")
	f.Fuzz(func(t *testing.T, current, next, email string) {
		errs := checkPassword(next, email, "input", "newPassword")
		usererrortest.Check(t, errs, WeakPassword)
		n := utf8.RuneCountInString(next)
		if len(errs) == 0 && (n < MinPasswordLength || n > MaxPasswordLength) {
			t.Fatalf("accepted a %d-character password", n)
		}
		_ = current // checked against the stored hash, not by a validator
	})
}

// FuzzSetRoleInput: setUserRole takes a UUID and a known role.
func FuzzSetRoleInput(f *testing.F) {
	f.Add("0193c1d4-0000-7000-8000-000000000001", "ADMIN")
	f.Add("x", "admin")
	f.Add("", "SUPERUSER")
	f.Fuzz(func(t *testing.T, id, role string) {
		in := SetRoleInput{UserID: strings.TrimSpace(id), Role: auth.Role(role)}
		errs := usererror.Validate("input", in)
		usererrortest.Check(t, errs, WeakPassword)
		if len(errs) == 0 && !in.Role.Valid() {
			t.Fatalf("accepted role %q", role)
		}
	})
}
