package debuginfo

import (
	"iter"
	"slices"
	"strings"
)

// Merge combines symbol tables — vmlinux's and each module's — into one
// view without copying them. Lookup asks the tables in the order given
// (so put vmlinux first: its symbol wins over a module's of the same
// name); ByAddr takes the nearest symbol any table finds; All and Match
// are in address order. Nil tables are ignored.
func Merge(tables ...Symbols) Symbols {
	var m merged
	for _, t := range tables {
		switch t := t.(type) {
		case nil:
		case merged:
			m = append(m, t...)
		default:
			m = append(m, t)
		}
	}
	if len(m) == 1 {
		return m[0]
	}
	return m
}

type merged []Symbols

func (m merged) Lookup(name string) (Symbol, bool) {
	for _, t := range m {
		if s, ok := t.Lookup(name); ok {
			return s, true
		}
	}
	return Symbol{}, false
}

func (m merged) ByAddr(addr uint64) (Symbol, uint64, bool) {
	var best Symbol
	var bestOff uint64
	found := false
	for _, t := range m {
		s, off, ok := t.ByAddr(addr)
		if ok && (!found || off < bestOff || (off == bestOff && s.Size != 0 && best.Size == 0)) {
			best, bestOff, found = s, off, true
		}
	}
	return best, bestOff, found
}

func (m merged) Match(s string) []Symbol {
	var out []Symbol
	for _, t := range m {
		out = append(out, t.Match(s)...)
	}
	slices.SortStableFunc(out, func(a, b Symbol) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	return out
}

// All merges the tables' address-ordered streams. Tables are few (one
// per module), so each step scans the heads linearly.
func (m merged) All(yield func(Symbol) bool) {
	type cursor struct {
		next func() (Symbol, bool)
		stop func()
		head Symbol
		ok   bool
	}
	cs := make([]cursor, 0, len(m))
	defer func() {
		for _, c := range cs {
			c.stop()
		}
	}()
	for _, t := range m {
		next, stop := iter.Pull(iter.Seq[Symbol](t.All))
		c := cursor{next: next, stop: stop}
		c.head, c.ok = next()
		cs = append(cs, c)
	}
	for {
		best := -1
		for i := range cs {
			if cs[i].ok && (best < 0 || cs[i].head.Addr < cs[best].head.Addr) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		if !yield(cs[best].head) {
			return
		}
		cs[best].head, cs[best].ok = cs[best].next()
	}
}

func (m merged) Source() string {
	names := make([]string, len(m))
	for i, t := range m {
		names[i] = t.Source()
	}
	return strings.Join(names, " + ")
}

// At lists the symbols at addr of every table that can list them.
func (m merged) At(addr uint64) []Symbol {
	var out []Symbol
	for _, t := range m {
		out = append(out, AliasesAt(t, addr)...)
	}
	return out
}
