package analyze

import (
	"salvage/debuginfo"
)

// crashByAddr is ByAddr choosing among symbols that share an address the
// way crash does (measured on the lab's dumps with sym and dis): an exact
// address is shown as the first, by name, of its sized symbols (memset's
// address is "__memset", default_idle's not "__cpuidle_text_start"), an
// address inside as an offset from the last by name ("memcpy+5",
// "__softirqentry_text_start+5").
func crashByAddr(syms debuginfo.Symbols, addr uint64) (debuginfo.Symbol, uint64, bool) {
	s, off, ok := syms.ByAddr(addr)
	if !ok {
		return s, off, ok
	}
	keep := crashKeeps(syms)
	best := s
	for _, a := range debuginfo.AliasesAt(syms, s.Addr) {
		if a.Module != s.Module || !keep(a) {
			continue
		}
		switch {
		case off != 0:
			if a.Name > best.Name {
				best = a
			}
		case (a.Size > 0) != (best.Size > 0):
			if a.Size > 0 {
				best = a
			}
		case a.Name < best.Name:
			best = a
		}
	}
	return best, off, true
}

// gdbByAddr is ByAddr choosing among symbols at one address as gdb does
// for the <symbol+offset> after a branch target: gdb's minimal symbols
// are sorted by address, then name, and it takes the last sized one
// ("memset", not "__memset"; "__x86_indirect_thunk_array", not the label
// "__x86_indirect_thunk_rax"), else the last.
func gdbByAddr(syms debuginfo.Symbols, addr uint64) (debuginfo.Symbol, uint64, bool) {
	s, off, ok := syms.ByAddr(addr)
	if !ok {
		return s, off, ok
	}
	best := s
	for _, a := range debuginfo.AliasesAt(syms, s.Addr) {
		if a.Module != s.Module {
			continue
		}
		if off != 0 {
			// Inside: the last by name, as crash's own labels
			// ("__x86_indirect_thunk_rax+12").
			if a.Name > best.Name {
				best = a
			}
			continue
		}
		if (a.Size > 0) != (best.Size > 0) {
			if a.Size > 0 {
				best = a
			}
		} else if a.Name > best.Name {
			best = a
		}
	}
	return best, off, true
}
