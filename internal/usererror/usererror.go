// Package usererror holds the expected failures a mutation reports in its
// payload's userErrors (bad input the client can correct, as opposed to
// the top-level errors of gqlerr), and the input validation that produces
// most of them. Every subgraph binds its GraphQL UserError and ErrorCode
// types to these Go types.
package usererror

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/onlinemart/mart/internal/gqlerr"
)

// UserError is one expected failure: which input field, what, and a code.
type UserError struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
	Code    Code     `json:"code"`
}

func (e UserError) Error() string { return e.Message }

// New returns a UserError for the field at path.
func New(code Code, message string, path ...string) UserError {
	return UserError{Field: path, Message: message, Code: code}
}

// OrEmpty returns errs for a payload's userErrors, which is a list even
// when there are none: empty, not null.
func OrEmpty(errs []UserError) []UserError {
	if errs == nil {
		return []UserError{}
	}
	return errs
}

// Code classifies a UserError; the GraphQL enum ErrorCode lists the values.
type Code string

// Codes shared by all subgraphs.
const (
	Invalid    Code = "INVALID"
	Required   Code = "REQUIRED"
	TooLong    Code = "TOO_LONG"
	TooShort   Code = "TOO_SHORT"
	OutOfRange Code = "OUT_OF_RANGE"
	Duplicate  Code = "DUPLICATE"
	NotFound   Code = "NOT_FOUND"
)

// MarshalGQL writes the code as a GraphQL enum value.
func (c Code) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(c))) }

// UnmarshalGQL reads an enum value.
func (c *Code) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("error code must be a string")
	}
	*c = Code(s)
	return nil
}

// AsError turns user errors about arguments (which, unlike mutation input,
// have no payload to carry them) into one BAD_USER_INPUT error.
func AsError(errs []UserError) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	return gqlerr.New(gqlerr.BadUserInput, strings.Join(msgs, "; "))
}
