package kernel

import (
	"errors"
	"fmt"

	"salvage/dump"
)

// ReadError is a failed read of a kernel object: what was being read (its
// type), where, and why — wrapping the translator's error and, when the
// dump lacks a page, the *dump.PageError with its state.
type ReadError struct {
	Addr uint64
	Type string // C spelling of the type read, or "" for raw bytes
	Size int
	Err  error
}

func (e *ReadError) Error() string {
	what := fmt.Sprintf("%d bytes", e.Size)
	if e.Type != "" {
		what = e.Type
	}
	return fmt.Sprintf("reading %s at %#x: %v", what, e.Addr, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// PageState reports the dump's state for the page that could not be read,
// when the failure was a page the dump does not hold.
func PageState(err error) (dump.PageState, bool) {
	var pe *dump.PageError
	if errors.As(err, &pe) {
		return pe.State, true
	}
	return 0, false
}

// TypeError is an operation a value's type does not support ("Deref of
// int", "member x of a union that has none").
type TypeError struct {
	Addr uint64
	Type string
	Msg  string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("%s at %#x: %s", e.Type, e.Addr, e.Msg)
}
