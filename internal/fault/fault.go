// Package fault is the server's one error type. Domain packages return a
// *Error with a Code; the tool adapter turns it into the answer a model
// sees, in one place.
package fault

import (
	"errors"
	"fmt"
)

// Code classifies an error by what the caller can do about it.
type Code string

const (
	// Invalid: the arguments are wrong; fix them and call again.
	Invalid Code = "invalid_argument"
	// Conflict: the arguments clash with what Redis already holds.
	Conflict Code = "conflict"
	// NotFound: the thing asked for does not exist.
	NotFound Code = "not_found"
	// Unavailable: Redis did not answer; the same call may succeed later.
	Unavailable Code = "unavailable"
	// Internal: a fault of the server; details are in its log only.
	Internal Code = "internal"
	// Forbidden: the caller may not do this (the server's configuration or
	// the credential's scopes); the same call fails again.
	Forbidden Code = "forbidden"
)

// Error is an error with a code and, for argument errors, the field at fault.
type Error struct {
	Code    Code
	Field   string
	Message string
	// Hint, when set, is what the caller should do instead of the code's
	// usual advice (for Unavailable: retry later).
	Hint string
	Err  error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		if msg == "" {
			return e.Err.Error()
		}
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Invalidf is an argument error naming field.
func Invalidf(field, format string, a ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, a...)}
}

// CodeOf returns the code of err: Internal for errors without one.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
