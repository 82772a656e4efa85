package debuginfo

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Table is an in-memory symbol table: symbols sorted by address for
// ByAddr and All, and a name index for Lookup. It implements Symbols and
// is immutable once built, so it is safe for concurrent use.
type Table struct {
	source string
	syms   []Symbol // sorted by Addr; aliases in order of preference

	// lazy, for kallsyms, is the table still compressed: syms is
	// decoded from it on first need (symbols), and Lookup uses its index.
	lazy     *kallsymsNames
	symsOnce sync.Once

	// byName maps name (and "module:name") → index of the preferred
	// symbol. It is built on the first Lookup: loading stays cheap for
	// callers that only resolve addresses.
	nameOnce sync.Once
	byName   map[string]int32

	// bounded: nothing lies beyond the last symbol unless its size says
	// so. True for vmlinux's tables, whose last symbol (__init_scratch_end,
	// _end) is a label: module addresses above it are not in it.
	bounded bool
}

// NewTable builds a table from syms (the caller must not reuse the
// slice). source names where they come from ("vmlinux
// /usr/lib/debug/boot/vmlinux-6.1.0", "kallsyms in the dump", "module
// virtio_blk"). Module symbols (Symbol.Module set) are also found by
// Lookup("module:name").
func NewTable(source string, syms []Symbol) *Table {
	// Among symbols at one address, the preferred one comes first: it is
	// what ByAddr reports. A sized symbol beats a label, a global one a
	// local one; otherwise the input order (the kernel's own order for
	// kallsyms) decides.
	syms = sortSymbols(syms)
	return &Table{source: source, syms: syms}
}

// symbols is syms, decoded first for a lazy table.
func (t *Table) symbols() []Symbol {
	if t.lazy != nil {
		t.symsOnce.Do(func() { t.syms = sortSymbols(t.lazy.decodeAll()) })
	}
	return t.syms
}

func (t *Table) buildIndex() {
	t.byName = make(map[string]int32, len(t.syms))
	for i := range t.syms {
		t.index(t.syms[i].Name, int32(i))
		if m := t.syms[i].Module; m != "" {
			t.index(m+":"+t.syms[i].Name, int32(i))
		}
	}
}

// sortSymbols sorts by address. Among symbols at one address, the
// preferred one comes first: it is what ByAddr reports. A sized symbol
// beats a label, a global one a local one; otherwise the input order (the
// kernel's own order for kallsyms) decides.
func sortSymbols(syms []Symbol) []Symbol {
	less := func(a, b *Symbol) bool {
		if a.Addr != b.Addr {
			return a.Addr < b.Addr
		}
		return aliasRank(*a) < aliasRank(*b)
	}
	sorted := true
	for i := 1; i < len(syms); i++ {
		if less(&syms[i], &syms[i-1]) {
			sorted = false
			break
		}
	}
	if sorted {
		return syms
	}
	// Sort (address, rank<<32 | input index) pairs: comparing them
	// needs no trip to the symbols, and the index makes the order total.
	type key struct{ addr, tie uint64 }
	keys := make([]key, len(syms))
	for i := range syms {
		keys[i] = key{syms[i].Addr, uint64(aliasRank(syms[i]))<<32 | uint64(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return cmp.Compare(a.tie, b.tie)
	})
	// Apply the permutation in place, cycle by cycle (a copy of the
	// table would be as big as the table): position i takes the symbol
	// at keys[i]'s index.
	done := make([]uint64, (len(syms)+63)/64)
	for i := range keys {
		if done[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		first := syms[i]
		j := i
		for {
			done[j/64] |= 1 << (j % 64)
			from := int(uint32(keys[j].tie))
			if from == i {
				syms[j] = first
				break
			}
			syms[j] = syms[from]
			j = from
		}
	}
	return syms
}

// aliasRank orders symbols that share an address: lower is preferred.
func aliasRank(s Symbol) int {
	r := 0
	if s.Size == 0 {
		r += 2
	}
	if !isGlobalType(s.Type) {
		r++
	}
	return r
}

// isGlobalType reports whether an nm-style type letter is a global one.
func isGlobalType(t byte) bool { return t >= 'A' && t <= 'Z' }

// index records name → i unless a better symbol of that name is known:
// Lookup prefers a global symbol to a local one of the same name, and
// then the lowest address (the first one indexed).
func (t *Table) index(name string, i int32) {
	old, ok := t.byName[name]
	if !ok || (!isGlobalType(t.syms[old].Type) && isGlobalType(t.syms[i].Type)) {
		t.byName[name] = i
	}
}

// Len is the number of symbols.
func (t *Table) Len() int {
	if t.lazy != nil {
		return len(t.lazy.at)
	}
	return len(t.syms)
}

// Source names where the symbols come from.
func (t *Table) Source() string { return t.source }

// Lookup finds a symbol by name; "module:name" picks a module's symbol.
// When several symbols share a name (static functions of different
// files), it returns a global one if there is one, else the lowest.
func (t *Table) Lookup(name string) (Symbol, bool) {
	if t.lazy != nil {
		return t.lazy.lookup(name)
	}
	t.nameOnce.Do(t.buildIndex)
	if i, ok := t.byName[name]; ok {
		return t.syms[i], true
	}
	return Symbol{}, false
}

// LookupAll returns every symbol named name, in address order.
func (t *Table) LookupAll(name string) []Symbol {
	syms := t.symbols()
	var out []Symbol
	mod, short, qualified := strings.Cut(name, ":")
	for _, s := range syms {
		if s.Name == name || (qualified && s.Module == mod && s.Name == short) {
			out = append(out, s)
		}
	}
	return out
}

// ByAddr finds the symbol containing addr: the nearest symbol at or below
// it, unless that symbol's size is known and addr lies beyond its end (or,
// for vmlinux's tables, it is the last symbol, a label, and addr is past it).
// The end of a function counts as in it: a function whose last
// instruction calls a noreturn one (sysrq_handle_crash calls panic) has
// that return address, one past its end, on the stack. Of several
// symbols at that address it prefers one whose size covers addr, then a
// global one.
func (t *Table) ByAddr(addr uint64) (Symbol, uint64, bool) {
	syms := t.symbols()
	// i is the number of symbols at or below addr.
	i, _ := slices.BinarySearchFunc(syms, addr, func(s Symbol, a uint64) int {
		if s.Addr <= a {
			return -1
		}
		return 1
	})
	if i == 0 {
		return Symbol{}, 0, false
	}
	at := syms[i-1].Addr
	first := i - 1
	for first > 0 && syms[first-1].Addr == at {
		first--
	}
	off := addr - at
	if t.bounded && i == len(syms) && off > 0 && syms[i-1].Size == 0 {
		return Symbol{}, 0, false
	}
	for _, s := range syms[first:i] {
		if s.Size == 0 || off < s.Size || (off == s.Size && isTextType(s.Type)) {
			return s, off, true
		}
	}
	return Symbol{}, 0, false
}

// isTextType reports whether an nm-style type letter is code's.
func isTextType(t byte) bool {
	switch t {
	case 'T', 't', 'W', 'w', 'i':
		return true
	}
	return false
}

// Match lists the symbols whose names contain s, in address order.
func (t *Table) Match(s string) []Symbol {
	syms := t.symbols()
	var out []Symbol
	for _, sym := range syms {
		if strings.Contains(sym.Name, s) {
			out = append(out, sym)
		}
	}
	return out
}

// All iterates the symbols in address order.
func (t *Table) All(yield func(Symbol) bool) {
	syms := t.symbols()
	for _, s := range syms {
		if !yield(s) {
			return
		}
	}
}

// At returns every symbol at exactly addr, in the table's order.
func (t *Table) At(addr uint64) []Symbol {
	syms := t.symbols()
	i, _ := slices.BinarySearchFunc(syms, addr, func(s Symbol, a uint64) int { return cmp.Compare(s.Addr, a) })
	var out []Symbol
	for ; i < len(syms) && syms[i].Addr == addr; i++ {
		out = append(out, syms[i])
	}
	return out
}
