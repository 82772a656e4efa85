package kernel

import (
	"sync"

	"salvage/debuginfo"
)

// moduleState is what the kernel knows of its modules, read on first
// need: walking them costs reads of every module's symbol table, which a
// caller resolving only vmlinux's symbols never pays for.
type moduleState struct {
	mu    sync.Mutex
	done  bool
	list  []Module
	err   error
	table *debuginfo.Table // every module's symbols; nil when none
}

// moduleSymbols is vmlinux's symbol table (or the dump's kallsyms) with
// the loaded modules' symbols added on first need: a name vmlinux lacks,
// an address outside it, Match or All. If the modules cannot be read,
// it answers as the base table alone; Kernel.Modules says why.
type moduleSymbols struct {
	base debuginfo.Symbols
	k    *Kernel
}

func (s *moduleSymbols) modules() *debuginfo.Table {
	st := &s.k.mods
	st.mu.Lock()
	defer st.mu.Unlock()
	s.k.loadModulesLocked()
	return st.table
}

func (s *moduleSymbols) all() debuginfo.Symbols {
	if t := s.modules(); t != nil {
		return debuginfo.Merge(s.base, t)
	}
	return s.base
}

func (s *moduleSymbols) Lookup(name string) (debuginfo.Symbol, bool) {
	if sym, ok := s.base.Lookup(name); ok {
		return sym, true
	}
	if t := s.modules(); t != nil {
		return t.Lookup(name)
	}
	return debuginfo.Symbol{}, false
}

func (s *moduleSymbols) ByAddr(addr uint64) (debuginfo.Symbol, uint64, bool) {
	// A sized vmlinux symbol settles it; a label (or nothing) leaves
	// room for a nearer module symbol.
	sym, off, ok := s.base.ByAddr(addr)
	if ok && sym.Size != 0 {
		return sym, off, true
	}
	if ok {
		if t := s.modules(); t != nil {
			if msym, moff, mok := t.ByAddr(addr); mok && moff < off {
				return msym, moff, true
			}
		}
		return sym, off, true
	}
	if t := s.modules(); t != nil {
		return t.ByAddr(addr)
	}
	return debuginfo.Symbol{}, 0, false
}

func (s *moduleSymbols) Match(str string) []debuginfo.Symbol { return s.all().Match(str) }

func (s *moduleSymbols) All(yield func(debuginfo.Symbol) bool) { s.all().All(yield) }

// Source is the base table's: callers tell vmlinux's sized symbols from
// kallsyms' by it, and module symbols always carry their ELF sizes.
func (s *moduleSymbols) Source() string { return s.base.Source() }

// At lists vmlinux's and the modules' symbols at addr.
func (s *moduleSymbols) At(addr uint64) []debuginfo.Symbol {
	out := debuginfo.AliasesAt(s.base, addr)
	if t := s.modules(); t != nil {
		out = append(out, t.At(addr)...)
	}
	return out
}
