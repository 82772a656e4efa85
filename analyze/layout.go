package analyze

import (
	"fmt"
	"strings"

	"salvage/debuginfo"
)

// The type layouts of crash's struct, union and whatis: gdb's ptype text
// (four blanks an indent level, anonymous members expanded, named ones
// declared), and with -o crash's variant of it, a right-justified
// "[OFFSET]" column before each member that has an offset.

// layoutWriter renders the members of a struct or union.
type layoutWriter struct {
	b       strings.Builder
	offsets bool
	// zeroIsFlexible: BTF writes a flexible array member (x[]) as a
	// zero-length array, which gdb, reading DWARF, shows as x[].
	zeroIsFlexible bool
	width          int     // of the offset column: "[OFFSET]" right-justified
	addr           *uint64 // with -o and an address: members' addresses replace offsets
}

// writeLayout renders "struct NAME {", the members and "}"; the caller
// adds "SIZE: N".
func writeLayout(t *debuginfo.Type, offsets, btf bool) string {
	return writeLayoutAt(t, offsets, btf, nil)
}

// writeLayoutAt is writeLayout with -o and an address: crash then shows
// each member's address ("[ffff8884bf59b0a8]") where the offset would be.
func writeLayoutAt(t *debuginfo.Type, offsets, btf bool, addr *uint64) string {
	r := t.Resolve()
	lw := &layoutWriter{offsets: offsets, zeroIsFlexible: btf, addr: addr, width: max(6, len(fmt.Sprintf("[%d]", maxOffset(r, 0, 0)))+2)}
	if addr != nil {
		lw.width = len(fmt.Sprintf("[%x]", *addr+uint64(maxOffset(r, 0, 0)))) + 2
	}
	fmt.Fprintf(&lw.b, "%s {\n", debuginfo.TypeName(r))
	lw.members(r, 1, 0, true, map[*debuginfo.Type]bool{})
	lw.b.WriteString("}\n")
	return lw.b.String()
}

func (lw *layoutWriter) prefix(depth int, off int64, withOff bool) string {
	if !lw.offsets {
		return strings.Repeat("    ", depth)
	}
	col := strings.Repeat(" ", lw.width+1)
	if withOff {
		label := fmt.Sprintf("[%d]", off)
		if lw.addr != nil {
			label = fmt.Sprintf("[%x]", *lw.addr+uint64(off))
		}
		col = fmt.Sprintf("%*s ", lw.width, label)
	}
	return col + strings.Repeat("    ", depth-1)
}

// members writes t's members. reachable says whether they can be named
// from the outer type (directly or through anonymous members): crash
// shows offsets only for those, not inside a named member's anonymous
// struct.
func (lw *layoutWriter) members(t *debuginfo.Type, depth int, base int64, reachable bool, seen map[*debuginfo.Type]bool) {
	if seen[t] || depth > 32 {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for _, m := range t.Members {
		off := base + m.Offset
		if in := m.Type; in != nil && (in.Kind == debuginfo.KindStruct || in.Kind == debuginfo.KindUnion) && in.Name == "" {
			fmt.Fprintf(&lw.b, "%s%s %s{\n", lw.prefix(depth, off, false), in.Kind, qualText(in.Qual))
			lw.members(in, depth+1, off, reachable && m.Name == "", seen)
			name := ""
			if m.Name != "" {
				name = " " + m.Name
			}
			// crash puts a named member's offset on its closing line.
			fmt.Fprintf(&lw.b, "%s}%s;\n", lw.prefix(depth, off, reachable && m.Name != ""), name)
			continue
		}
		mt := m.Type
		if lw.zeroIsFlexible && mt != nil && mt.Kind == debuginfo.KindArray && mt.Len == 0 {
			c := *mt
			c.Len = -1
			mt = &c
		}
		decl := debuginfo.Declare(mt, m.Name)
		if m.BitSize > 0 {
			decl += fmt.Sprintf(" : %d", m.BitSize)
			// crash shows the byte holding the bitfield's first bit.
			off += int64(m.BitOffset / 8)
		}
		fmt.Fprintf(&lw.b, "%s%s;\n", lw.prefix(depth, off, reachable), decl)
	}
}

func qualText(q debuginfo.Qual) string {
	s := ""
	if q&debuginfo.QualConst != 0 {
		s += "const "
	}
	if q&debuginfo.QualVolatile != 0 {
		s += "volatile "
	}
	return s
}

// maxOffset is the largest member offset in t, anonymous members'
// members included: crash sizes the -o column to fit it.
func maxOffset(t *debuginfo.Type, base int64, depth int) int64 {
	m := base
	if t == nil || depth > 32 {
		return m
	}
	for _, mb := range t.Members {
		m = max(m, base+mb.Offset)
		if in := mb.Type; in != nil && (in.Kind == debuginfo.KindStruct || in.Kind == debuginfo.KindUnion) && in.Name == "" {
			m = max(m, maxOffset(in, base+mb.Offset, depth+1))
		}
	}
	return m
}

// isBTF reports types read from BTF rather than DWARF.
func isBTF(ts debuginfo.Types) bool {
	return strings.Contains(ts.Source(), "BTF")
}
