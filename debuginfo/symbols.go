package debuginfo

// Symbol is one kernel or module symbol.
type Symbol struct {
	Name   string
	Addr   uint64 // run-time address (KASLR offset applied)
	Size   uint64 // 0 when unknown (kallsyms: distance to the next symbol)
	Type   byte   // nm-style: 'T' 't' 'D' 'd' 'B' 'b' 'R' 'r' 'W' 'A'…
	Module string // "" for vmlinux
}

// Symbols is a symbol table: vmlinux's plus modules', addresses relocated.
type Symbols interface {
	// Lookup finds a symbol by name ("init_task"; "mod:sym" picks a module's).
	Lookup(name string) (Symbol, bool)
	// ByAddr finds the symbol containing addr (the nearest one at or below
	// it, within its size when known) and the offset into it.
	ByAddr(addr uint64) (sym Symbol, off uint64, ok bool)
	// Match lists symbols whose names contain s (crash's sym -q).
	Match(s string) []Symbol
	// All iterates symbols in address order (crash's sym -l).
	All(yield func(Symbol) bool)
	// Source names where the symbols come from.
	Source() string
}

// VirtReader reads kernel virtual memory of the dump; the analyzer supplies
// it (arch page-table walk over dump.Memory). Errors carry the address and
// the page state.
type VirtReader interface {
	ReadVirt(p []byte, addr uint64) (int, error)
}

// AliasLister is a symbol table that can list every symbol at one
// address: tools differ in which alias they show (crash and gdb pick by
// name), so callers that mimic one need them all.
type AliasLister interface {
	At(addr uint64) []Symbol
}

// AliasesAt lists the symbols of syms at exactly addr; nil when syms
// cannot list them.
func AliasesAt(syms Symbols, addr uint64) []Symbol {
	if a, ok := syms.(AliasLister); ok {
		return a.At(addr)
	}
	return nil
}
