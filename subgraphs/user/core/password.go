package core

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/onlinemart/mart/internal/usererror"
)

// Password policy.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 128 // bounds the work one request can ask of argon2
)

// argon2id parameters (OWASP's minimum recommendation). They are stored in
// each hash, so raising them later leaves existing hashes verifiable.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// checkPassword applies the password policy; field is where a violation is
// reported.
func checkPassword(password, email string, field ...string) []usererror.UserError {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return []usererror.UserError{usererror.New(WeakPassword,
			fmt.Sprintf("password must be at least %d characters", MinPasswordLength), field...)}
	case n > MaxPasswordLength:
		return []usererror.UserError{usererror.New(usererror.TooLong,
			fmt.Sprintf("password must be at most %d characters", MaxPasswordLength), field...)}
	case email != "" && strings.EqualFold(strings.TrimSpace(password), email):
		return []usererror.UserError{usererror.New(WeakPassword, "password must not be the email address", field...)}
	}
	return nil
}

// hashPassword returns the argon2id hash of password in the PHC string
// format: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("password hash: not a supported argon2id PHC string")

// verifyPassword reports whether password matches hash, comparing in
// constant time.
func verifyPassword(password, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	var memory, iterations uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &iterations, &threads); err != nil ||
		memory == 0 || memory > 1<<22 || iterations == 0 || iterations > 16 || threads == 0 {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, iterations, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when an email is unknown, so that a sign-in
// costs one hash whether the account exists or not.
var dummyHash = sync.OnceValue(func() string {
	h, err := hashPassword(rand.Text())
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return h
})
