package analyze

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"salvage/debuginfo"
	"salvage/kernel"
)

// valuePrinter renders a value as gdb's print does, which crash's struct
// and p show: members "name = value", two blanks an indent level, runs of
// more than ten equal array elements as "<repeats N times>", pointers in
// hexadecimal with <symbol> for kernel addresses, char arrays as strings.
// crash turns repeats off and prints up to 256 elements.
type valuePrinter struct {
	k     *kernel.Kernel
	hex   bool // -x: gdb's output radix 16, as crash sets it
	b     strings.Builder
	depth int
}

// repeatThreshold is gdb's "set print repeats": crash turns the
// "<repeats N times>" abbreviation off (every element prints).
const repeatThreshold = 1 << 62

// printElements is gdb's "set print elements" as crash sets it
// (gdb_interface.c): arrays and strings stop after 256 elements, "...".
const printElements = 256

func (p *valuePrinter) indent(n int) string { return strings.Repeat("  ", n) }

// value renders the value of type t held in data (at addr), for an
// object at indent level lvl.
func (p *valuePrinter) value(t *debuginfo.Type, data []byte, addr uint64, lvl int, bitOff, bitSize int) string {
	r := t.Resolve()
	if r == nil {
		return "void"
	}
	switch r.Kind {
	case debuginfo.KindStruct, debuginfo.KindUnion:
		return p.aggregate(r, data, addr, lvl)
	case debuginfo.KindArray:
		return p.array(r, data, addr, lvl)
	case debuginfo.KindPointer:
		v := leUint(data, 8)
		return p.pointer(r, v)
	case debuginfo.KindEnum:
		v := p.intBits(r, data, bitOff, bitSize)
		if p.hex {
			return fmt.Sprintf("%#x", uint64(v))
		}
		for _, e := range r.Enums {
			if e.Value == v {
				return e.Name
			}
		}
		return strconv.FormatInt(v, 10)
	case debuginfo.KindInt:
		v := p.intBits(r, data, bitOff, bitSize)
		size := int(r.Size)
		if bitSize > 0 {
			size = (bitSize + 7) / 8
		}
		if r.Size == 1 && bitSize == 0 && isCharName(r) {
			if p.hex {
				return fmt.Sprintf("%#x %s", uint8(v), charLiteral(byte(v)))
			}
			return fmt.Sprintf("%d %s", v, charLiteral(byte(v)))
		}
		if p.hex {
			u := uint64(v)
			if size < 8 && bitSize == 0 {
				u &= 1<<(8*uint(size)) - 1
			}
			return fmt.Sprintf("%#x", u)
		}
		if r.Encoding == debuginfo.EncBool {
			switch v {
			case 0:
				return "false"
			case 1:
				return "true"
			}
			return strconv.FormatInt(v, 10)
		}
		if r.Size == 1 && bitSize == 0 && isCharName(r) {
			return fmt.Sprintf("%d %s", v, charLiteral(byte(v)))
		}
		if isSigned(r) {
			return strconv.FormatInt(v, 10)
		}
		if bitSize == 0 && size < 8 {
			return strconv.FormatUint(uint64(v)&(1<<(8*uint(size))-1), 10)
		}
		return strconv.FormatUint(uint64(v), 10)
	case debuginfo.KindFloat:
		if r.Size == 4 {
			return strconv.FormatFloat(float64(math.Float32frombits(uint32(leUint(data, 4)))), 'g', -1, 32)
		}
		return strconv.FormatFloat(math.Float64frombits(leUint(data, 8)), 'g', -1, 64)
	case debuginfo.KindFunc:
		return fmt.Sprintf("{%s} %#x", debuginfo.TypeName(r), addr)
	}
	return "?"
}

func isSigned(r *debuginfo.Type) bool {
	return r.Encoding == debuginfo.EncSigned || r.Encoding == debuginfo.EncChar
}

// isCharName reports whether an integer type is one of C's character
// types, which gdb prints with their character.
func isCharName(r *debuginfo.Type) bool {
	switch r.Name {
	case "char", "signed char", "unsigned char":
		return true
	}
	return r.Encoding == debuginfo.EncChar
}

func (p *valuePrinter) intBits(r *debuginfo.Type, data []byte, bitOff, bitSize int) int64 {
	size := int(r.Size)
	if size <= 0 || size > 8 {
		size = 8
	}
	if bitSize > 0 {
		n := (bitOff + bitSize + 7) / 8
		x := leUint(data, n) >> uint(bitOff) & (1<<uint(bitSize) - 1)
		if isSigned(r) && x&(1<<uint(bitSize-1)) != 0 {
			x |= ^uint64(0) << uint(bitSize)
		}
		return int64(x)
	}
	x := leUint(data, size)
	signed := isSigned(r)
	if r.Kind == debuginfo.KindEnum {
		signed = false
		for _, e := range r.Enums {
			signed = signed || e.Value < 0
		}
	}
	if signed && size < 8 && x&(1<<(8*uint(size)-1)) != 0 {
		x |= ^uint64(0) << (8 * uint(size))
	}
	return int64(x)
}

func leUint(b []byte, n int) uint64 {
	var buf [8]byte
	copy(buf[:], b[:min(n, len(b), 8)])
	return binary.LittleEndian.Uint64(buf[:])
}

func (p *valuePrinter) aggregate(r *debuginfo.Type, data []byte, addr uint64, lvl int) string {
	if len(r.Members) == 0 {
		return "{<No data fields>}"
	}
	var b strings.Builder
	b.WriteString("{\n")
	for i, m := range r.Members {
		b.WriteString(p.indent(lvl + 1))
		if m.Name != "" {
			b.WriteString(m.Name + " = ")
		}
		var md []byte
		if int(m.Offset) <= len(data) {
			md = data[m.Offset:]
		}
		b.WriteString(p.value(m.Type, md, addr+uint64(m.Offset), lvl+1, m.BitOffset, m.BitSize))
		if i < len(r.Members)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(p.indent(lvl) + "}")
	return b.String()
}

func (p *valuePrinter) array(r *debuginfo.Type, data []byte, addr uint64, lvl int) string {
	elem := r.Elem.Resolve()
	n := r.Len
	esz := typeSize(r.Elem)
	if n <= 0 || esz <= 0 {
		// A flexible array member: gdb shows its address, and for
		// characters the string there, as for a pointer.
		s := "0x" + strconv.FormatUint(addr, 16)
		if elem != nil && elem.Kind == debuginfo.KindInt && elem.Size == 1 && p.k != nil {
			if str, err := p.k.ReadCString(addr, 4*printElements+4); err == nil {
				s += " " + cString([]byte(str))
			}
		} else if p.k != nil {
			if sym := p.symbolAt(addr); sym != "" {
				s += " <" + sym + ">"
			}
		}
		return s
	}
	// crash's -x sets gdb's output radix: char arrays stay strings.
	if elem != nil && elem.Kind == debuginfo.KindInt && elem.Size == 1 && isCharName(elem) {
		return charArray(data[:min(int(n), len(data))])
	}
	var parts []string
	more := ""
	if n > printElements {
		n, more = printElements, "..."
	}
	for i := int64(0); i < n; {
		off := i * esz
		if off+esz > int64(len(data)) {
			break
		}
		s := p.value(r.Elem, data[off:off+esz], addr+uint64(off), lvl+1, 0, 0)
		j := i + 1
		for j < n && (j+1)*esz <= int64(len(data)) && string(data[j*esz:(j+1)*esz]) == string(data[off:off+esz]) {
			j++
		}
		if reps := j - i; reps > repeatThreshold {
			parts = append(parts, fmt.Sprintf("%s <repeats %d times>", s, reps))
			i = j
			continue
		}
		parts = append(parts, s)
		i++
	}
	return "{" + strings.Join(parts, ", ") + more + "}"
}

func typeSize(t *debuginfo.Type) int64 {
	for t != nil {
		switch t.Kind {
		case debuginfo.KindTypedef:
			t = t.Elem
			continue
		case debuginfo.KindPointer:
			return 8
		case debuginfo.KindArray:
			if t.Size <= 0 && t.Len > 0 {
				return t.Len * typeSize(t.Elem)
			}
		}
		return t.Size
	}
	return 0
}

func (p *valuePrinter) pointer(r *debuginfo.Type, v uint64) string {
	s := fmt.Sprintf("%#x", v)
	if v == 0 {
		return "0x0"
	}
	if p.k == nil {
		return s
	}
	target := r.Elem.Resolve()
	if target != nil && target.Kind == debuginfo.KindInt && target.Size == 1 && isCharName(target) {
		if str, err := p.k.ReadCString(v, 4*printElements+4); err == nil {
			return s + " " + cString([]byte(str))
		}
		return s + fmt.Sprintf(" <error: Cannot access memory at address %#x>", v)
	}
	if sym := p.symbolAt(v); sym != "" {
		return s + " <" + sym + ">"
	}
	return s
}

// symbolAt names a kernel text or data address as gdb's <symbol+off>;
// "" for addresses outside the kernel image.
func (p *valuePrinter) symbolAt(v uint64) string {
	if p.k.Symbols == nil {
		return ""
	}
	start, ok1 := p.k.Symbols.Lookup("_text")
	end, ok2 := p.k.Symbols.Lookup("_end")
	if !ok1 || !ok2 || v < start.Addr || v >= end.Addr {
		return ""
	}
	if sectionStart(p.k, v) != "" {
		// gdb finds the ELF section symbol there, and prints none.
		return ""
	}
	s, off, ok := p.k.Symbols.ByAddr(v)
	if ok && (s.Type == 'A' || s.Type == 'a') && off == 0 && v > 0 {
		// gdb skips absolute symbols (init_per_cpu__* can equal a
		// kernel address): the symbol that holds the byte before, then.
		if s2, off2, ok2 := p.k.Symbols.ByAddr(v - 1); ok2 && s2.Type != 'A' && s2.Type != 'a' {
			s, off = s2, off2+1
		} else {
			return ""
		}
	}
	if !ok {
		return ""
	}
	if off == 0 {
		return s.Name
	}
	return fmt.Sprintf("%s+%d", s.Name, off)
}

// charLiteral is gdb's spelling of a char: 'a', '\000', '\n', '\377'.
func charLiteral(c byte) string {
	return "'" + escapeChar(c, '\'') + "'"
}

func escapeChar(c byte, quote byte) string {
	switch c {
	case '\a':
		return `\a`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '\v':
		return `\v`
	case 033:
		return `\033`
	case '\\':
		return `\\`
	}
	if c == quote {
		return `\` + string(c)
	}
	if c >= 0x20 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf(`\%03o`, c)
}

// nextChar renders the character starting b as gdb does with a UTF-8
// host charset: a printable multi-byte sequence is shown as is and is one
// element; any other byte is escaped. It returns the text and the bytes
// used.
//
// A valid multi-byte sequence that is not printable (an unassigned code
// point) is still one character to gdb (mbrtowc decodes it; iswprint
// refuses it): its bytes are escaped, and it is one element.
func nextChar(b []byte, quote byte) (string, int) {
	if b[0] >= 0x80 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError && n > 1 {
			if unicode.IsPrint(r) {
				return string(b[:n]), n
			}
			var t strings.Builder
			for _, c := range b[:n] {
				t.WriteString(escapeChar(c, quote))
			}
			return t.String(), n
		}
	}
	return escapeChar(b[0], quote), 1
}

// endsInOctal reports whether t ends in an octal escape (\ooo).
func endsInOctal(t string) bool {
	n := len(t)
	return n >= 4 && t[n-4] == '\\' && t[n-3] >= '0' && t[n-3] <= '7' && t[n-2] >= '0' && t[n-2] <= '7' && t[n-1] >= '0' && t[n-1] <= '7'
}

// quoted renders b as a gdb string, up to printElements characters
// ("..." after the closing quote when some were left out).
func quoted(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	i, n := 0, 0
	octal := false // the last character was written as an octal escape
	for i < len(b) && n < printElements {
		// gdb counts a run of one repeated character towards the limit
		// as it prints it: whole (generic_printstr and
		// count_next_character), so the run that crosses the limit is
		// printed to its end.
		_, used := nextChar(b[i:], '"')
		run := 1
		for j := i + used; j+used <= len(b) && string(b[j:j+used]) == string(b[i:i+used]); j += used {
			run++
		}
		for range run {
			t, _ := nextChar(b[i:], '"')
			if octal && len(t) == 1 && t[0] >= '0' && t[0] <= '9' {
				// gdb escapes a digit after an octal escape, which
				// would otherwise read as part of it.
				t = fmt.Sprintf(`\%03o`, t[0])
			}
			octal = endsInOctal(t)
			s.WriteString(t)
			i += used
		}
		n += run
	}
	s.WriteByte('"')
	if i < len(b) {
		s.WriteString("...")
	}
	return s.String()
}

// cString is a NUL-terminated string as gdb prints a char pointer's.
func cString(b []byte) string { return quoted(b) }

// charArray is a char array as gdb prints it with crash's settings: the
// contents without the final NUL, every other NUL escaped.
func charArray(b []byte) string {
	end := len(b)
	if end > 0 && b[end-1] == 0 {
		end--
	}
	return quoted(b[:end])
}

// sectionMarkers are the linker symbols at the start of a vmlinux
// section (arch/x86/kernel/vmlinux.lds.S). crash's symbol table names
// such an address by its section (".data"), and gdb, finding the section
// symbol, names it not at all.
var sectionMarkers = []struct{ marker, section string }{
	{"_sdata", ".data"},
}

// sectionStart is the section that starts at v, or "".
func sectionStart(k *kernel.Kernel, v uint64) string {
	if k == nil || k.Symbols == nil {
		return ""
	}
	for _, m := range sectionMarkers {
		if s, ok := k.Symbols.Lookup(m.marker); ok && s.Addr == v {
			return m.section
		}
	}
	return ""
}

// rdSymbol names v for rd -s as crash's value_to_symstr does.
func (p *valuePrinter) rdSymbol(v uint64) string {
	if sec := sectionStart(p.k, v); sec != "" {
		return sec
	}
	// crash's own symbol table strips clone endings; gdb's does not.
	if name := p.symbolAt(v); name != "" {
		return crashSymbolName(name)
	}
	// crash's table, unlike gdb's, holds the modules' symbols too.
	if p.k == nil || p.k.Symbols == nil {
		return ""
	}
	if _, ok := p.k.ModuleOf(v); !ok {
		return ""
	}
	sym, off, ok := p.k.Symbols.ByAddr(v)
	if !ok || sym.Module == "" {
		return ""
	}
	if off == 0 {
		return crashSymbolName(sym.Name)
	}
	return fmt.Sprintf("%s+%d", crashSymbolName(sym.Name), off)
}
