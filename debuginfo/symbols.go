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
