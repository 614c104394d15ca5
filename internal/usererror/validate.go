package usererror

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
)

var (
	validate = newValidator()
	mu       sync.RWMutex
	messages = map[string]func(validator.FieldError) string{}
)

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	// Report fields by their GraphQL (json) names.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	return v
}

// Register adds a validation tag with the message shown when it fails.
// Call it from package init; tags are global to the process.
func Register(tag string, valid func(string) bool, message string) {
	if err := validate.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
		return valid(fl.Field().String())
	}); err != nil {
		panic(err)
	}
	mu.Lock()
	messages[tag] = func(validator.FieldError) string { return message }
	mu.Unlock()
}

// Validate checks v's `validate` tags and returns one UserError per failed
// field, with the field path starting at root (usually "input").
func Validate(root string, v any) []UserError {
	err := validate.Struct(v)
	if err == nil {
		return nil
	}
	var fes validator.ValidationErrors
	if !errors.As(err, &fes) {
		panic(fmt.Sprintf("usererror: cannot validate %T: %v", v, err)) // a programming error
	}
	out := make([]UserError, 0, len(fes))
	for _, fe := range fes {
		// Namespace is "Struct.field.list[2].sub"; replace the struct name
		// by root and give each list index its own path element.
		path := []string{root}
		for _, p := range strings.Split(fe.Namespace(), ".")[1:] {
			name, idx, _ := strings.Cut(p, "[")
			path = append(path, name)
			for idx != "" {
				var i string
				i, idx, _ = strings.Cut(idx, "]")
				path = append(path, i)
				idx = strings.TrimPrefix(idx, "[")
			}
		}
		out = append(out, UserError{Field: path, Message: message(fe), Code: code(fe)})
	}
	return out
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Float64
}

func code(fe validator.FieldError) Code {
	switch fe.Tag() {
	case "required":
		return Required
	case "min", "gte", "gt", "max", "lte", "lt", "len":
		switch {
		case isNumber(fe.Kind()):
			return OutOfRange
		case fe.Tag() == "min" || fe.Tag() == "gte" || fe.Tag() == "gt":
			return TooShort
		default:
			return TooLong
		}
	}
	return Invalid
}

func message(fe validator.FieldError) string {
	name, p := fe.Field(), fe.Param()
	unit := "characters"
	if fe.Kind() == reflect.Slice {
		unit = "items"
	}
	num := isNumber(fe.Kind())
	mu.RLock()
	custom := messages[fe.Tag()]
	mu.RUnlock()
	switch {
	case custom != nil:
		return name + " " + custom(fe)
	case fe.Tag() == "required":
		return name + " is required"
	case (fe.Tag() == "min" || fe.Tag() == "gte") && num:
		return fmt.Sprintf("%s must be %s or more", name, p)
	case (fe.Tag() == "max" || fe.Tag() == "lte") && num:
		return fmt.Sprintf("%s must be %s or less", name, p)
	case fe.Tag() == "min" || fe.Tag() == "gte":
		return fmt.Sprintf("%s must be at least %s %s", name, p, unit)
	case fe.Tag() == "max" || fe.Tag() == "lte":
		return fmt.Sprintf("%s must be at most %s %s", name, p, unit)
	case fe.Tag() == "iso4217":
		return name + " must be an ISO 4217 currency code such as USD"
	case fe.Tag() == "uuid":
		return name + " must be a UUID"
	case fe.Tag() == "email":
		return name + " must be an email address"
	case fe.Tag() == "oneof":
		return fmt.Sprintf("%s must be one of %s", name, strings.ReplaceAll(p, " ", ", "))
	}
	return fmt.Sprintf("%s is invalid (%s)", name, fe.Tag())
}
