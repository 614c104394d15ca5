// Package envvar declares settings read from environment variables. A
// component declares its own variables next to its code, each bound to the
// field it fills; the composition root gathers the declarations, and the
// same list drives loading, `mart --help` and the deploy checks. Every
// variable has a working local default.
package envvar

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Var is one environment variable and the field it fills.
type Var struct {
	Name    string
	Default string
	Help    string
	set     func(string) error
}

// Set parses value into the variable's field; the error says what was
// wanted.
func (v Var) Set(value string) error { return v.set(value) }

// Load sets every variable from lookup, or from its default when lookup
// has nothing (or an empty string) for it. The error names every variable
// that failed.
func Load(vars []Var, lookup func(string) (string, bool)) error {
	var errs []string
	for _, v := range vars {
		value := v.Default
		if s, ok := lookup(v.Name); ok && s != "" {
			value = s
		}
		if err := v.set(value); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v, got %q", v.Name, err, value))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Func declares a variable that set parses.
func Func(name, def, help string, set func(string) error) Var {
	return Var{Name: name, Default: def, Help: help, set: set}
}

// String declares a free-text variable.
func String(p *string, name, def, help string) Var {
	return Func(name, def, help, func(s string) error { *p = s; return nil })
}

// OneOf declares a variable that takes one of choices.
func OneOf(p *string, name, def, help string, choices ...string) Var {
	return Func(name, def, help, func(s string) error {
		if !slices.Contains(choices, s) {
			return fmt.Errorf("want %s", orList(choices))
		}
		*p = s
		return nil
	})
}

// Int declares a positive integer.
func Int(p *int, name, def, help string) Var {
	return Func(name, def, help, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return errors.New("want a positive integer")
		}
		*p = n
		return nil
	})
}

// Limit declares a positive integer, or -1 for no limit.
func Limit(p *int, name, def, help string) Var {
	return Func(name, def, help, func(s string) error {
		if s == "-1" {
			*p = -1
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return errors.New("want a positive integer or -1")
		}
		*p = n
		return nil
	})
}

// Bytes declares a positive byte count.
func Bytes(p *int64, name, def, help string) Var {
	return Func(name, def, help, func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return errors.New("want a positive integer")
		}
		*p = n
		return nil
	})
}

// Bool declares true or false.
func Bool(p *bool, name, def, help string) Var {
	return Func(name, def, help, func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	})
}

// Duration declares a positive duration.
func Duration(p *time.Duration, name, def, help string) Var {
	return Func(name, def, help, func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a positive duration such as 30s")
		}
		*p = d
		return nil
	})
}

// List declares a comma list; blanks around items and empty items are
// dropped.
func List(p *[]string, name, def, help string) Var {
	return Func(name, def, help, func(s string) error { *p = SplitList(s); return nil })
}

// SplitList splits a comma list, dropping blanks and empty items.
func SplitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
