package amd64

import (
	"errors"
	"fmt"

	"salvage/dump"
)

// Error is a failed translation or read of a kernel virtual address. It
// names the address, the page-table level that stopped the walk, and
// wraps the *dump.PageError when the dump lacks a page-table or data page.
type Error struct {
	Virt       uint64
	Op         string // "translate" or "read"
	Level      string // "PGD", "P4D", "PUD", "PMD", "PTE"; "" when no walk failed
	EntryAddr  uint64 // physical address of the entry at Level
	Entry      uint64 // its value, when read
	NotPresent bool   // the entry's present bit is clear
	Phys       uint64 // for reads: the physical address that failed
	Msg        string
	Err        error
}

func (e *Error) Error() string {
	va := fmt.Sprintf("virtual address %#x", e.Virt)
	switch {
	case e.Msg != "":
		return va + ": " + e.Msg
	case e.NotPresent:
		return fmt.Sprintf("%s: not mapped: %s entry %#x at physical %#x not present", va, e.Level, e.Entry, e.EntryAddr)
	case e.Level != "":
		var pe *dump.PageError
		if errors.As(e.Err, &pe) {
			return fmt.Sprintf("%s: %s table page %#x not in the dump (%s)", va, e.Level, e.EntryAddr&^0xfff, pe.State)
		}
		return fmt.Sprintf("%s: reading %s entry at physical %#x: %v", va, e.Level, e.EntryAddr, e.Err)
	case e.Op == "read":
		return fmt.Sprintf("%s (physical %#x): %v", va, e.Phys, e.Err)
	}
	return fmt.Sprintf("%s: %v", va, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
