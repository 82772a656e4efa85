package dump

import "fmt"

// PageState says what a dump holds for one page frame.
type PageState uint8

const (
	// PagePresent: the page's contents are in the dump.
	PagePresent PageState = iota
	// PageZero: the page is all zeroes (stored as a shared zero page, or
	// excluded by dump level 1, whose pages are zero by definition).
	PageZero
	// PageExcluded: the page is RAM but the dump's filter left it out.
	PageExcluded
	// PageMissing: the page should be in the dump but is not, because the
	// dump is incomplete (the collector stopped before writing it).
	PageMissing
	// PageNotRAM: the frame is not RAM of the dumped machine.
	PageNotRAM
)

func (s PageState) String() string {
	switch s {
	case PagePresent:
		return "present"
	case PageZero:
		return "zero"
	case PageExcluded:
		return "excluded by the dump filter"
	case PageMissing:
		return "missing (incomplete dump)"
	case PageNotRAM:
		return "not RAM"
	}
	return fmt.Sprintf("PageState(%d)", uint8(s))
}

// Range is a range of physical addresses, [Start, End).
type Range struct {
	Start, End uint64
}

// Memory is the physical memory of a dumped machine. Implementations are
// safe for concurrent use.
type Memory interface {
	// ReadPhys reads len(p) bytes starting at physical address addr. Zero
	// pages read as zeroes. If the range touches a page that is not
	// present, ReadPhys returns the bytes before it and a *PageError.
	ReadPhys(p []byte, addr uint64) (n int, err error)
	// State reports what the dump holds for page frame pfn.
	State(pfn uint64) PageState
	// PageSize is the dumped machine's page size in bytes.
	PageSize() int
	// Ranges lists the machine's RAM as the dump describes it, sorted.
	Ranges() []Range
}

// PageError is the error for a read of a page the dump does not hold.
type PageError struct {
	File  string // the dump file, for the message
	Addr  uint64 // physical address of the first byte not read
	State PageState
}

func (e *PageError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s: physical address %#x: page %s", e.File, e.Addr, e.State)
	}
	return fmt.Sprintf("physical address %#x: page %s", e.Addr, e.State)
}

// FormatError reports a malformed dump: which file, where, and what was
// expected. It mirrors debug/elf's FormatError.
type FormatError struct {
	File string
	Off  int64 // offset in the file, or -1 when not applicable
	Msg  string
}

func (e *FormatError) Error() string {
	if e.Off >= 0 {
		return fmt.Sprintf("%s: %s (at offset %#x)", e.File, e.Msg, e.Off)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}
