// Package gqlerr is the client-facing error of a GraphQL operation: a
// message and one of the top-level codes below, reported in
// extensions.code, which clients branch on. Any other error a resolver
// returns is internal and reaches clients only as INTERNAL_SERVER_ERROR.
package gqlerr

import "fmt"

// Top-level error codes.
const (
	Unauthenticated = "UNAUTHENTICATED"
	Forbidden       = "FORBIDDEN"
	NotFound        = "NOT_FOUND"
	BadUserInput    = "BAD_USER_INPUT"
	Internal        = "INTERNAL_SERVER_ERROR"
	// Unavailable: a dependency (the database) could not be reached; the
	// same request may succeed when retried shortly.
	Unavailable = "SERVICE_UNAVAILABLE"
)

// Error is an expected failure a client can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// New returns a client-facing error with the given code.
func New(code, message string) error { return &Error{Code: code, Message: message} }

// Errorf returns a client-facing error with a formatted message.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
