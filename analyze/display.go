package analyze

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// The text layouts of crash's display_memory (memory.c), which rd and
// other raw-memory commands print: an address right-justified in 16
// columns, a colon and two blanks, then 16 bytes' worth of values, each
// followed by a blank; in hexadecimal, an ASCII column after two more
// blanks, padded on the last line to where full lines put it.

// valueStyle is how values print.
type valueStyle int

const (
	styleHex      valueStyle = iota // zero-padded to the unit's width
	styleSigned                     // rd -d
	styleUnsigned                   // rd -D
)

// memLayout is one of display_memory's per-unit formats.
type memLayout struct {
	Size  int // bytes per value: 1, 2, 4 or 8
	Style valueStyle
	// ASCII adds the ASCII column (crash: hexadecimal without -x).
	ASCII bool
	// Swap prints 16- and 32-bit values in network byte order (rd -N),
	// the ASCII column following the swapped bytes, as crash does.
	Swap bool
	// Symbol, when set, names 64-bit values that are kernel addresses
	// (rd -s); they print as "%-16s " instead of in hexadecimal.
	Symbol func(uint64) string
}

func (l memLayout) perLine() int { return 16 / l.Size }

// addressWidth is crash's VADDR_PRLEN on 64-bit machines.
const addressWidth = 16

// lineDumper writes values in a memLayout, line by line.
type lineDumper struct {
	w      io.Writer
	l      memLayout
	addr   uint64 // address of the next value
	n      int    // values on the current line
	values int    // values written in all
	line   []byte
	chars  []byte
	err    error
}

func newLineDumper(w io.Writer, l memLayout, addr uint64) *lineDumper {
	return &lineDumper{w: w, l: l, addr: addr}
}

// value adds the value held in b (l.Size bytes, little-endian).
func (d *lineDumper) value(b []byte) {
	if d.n == d.l.perLine() || d.values == 0 {
		if d.values > 0 {
			d.endLine(false)
		}
		d.line = fmt.Appendf(d.line[:0], "%*x:  ", addressWidth, d.addr)
		d.chars = d.chars[:0]
		d.n = 0
	}
	v := value(b, d.l.Size)
	if d.l.Swap && (d.l.Size == 2 || d.l.Size == 4) {
		v = swap(v, d.l.Size)
	}
	if name := d.symbol(v); name != "" {
		d.line = fmt.Appendf(d.line, "%-16s ", name)
	} else {
		d.line = appendValue(d.line, v, d.l)
	}
	if d.l.ASCII {
		for i := 0; i < d.l.Size; i++ {
			d.chars = append(d.chars, printable(byte(v>>(8*i))))
		}
	}
	d.n++
	d.values++
	d.addr += uint64(d.l.Size)
}

// finish ends the last line. Nothing is written when no value was.
func (d *lineDumper) finish() error {
	if d.values > 0 {
		d.endLine(true)
	}
	return d.err
}

func (d *lineDumper) endLine(last bool) {
	if d.l.ASCII {
		if last {
			pad := (d.l.perLine() - d.n) * (2*d.l.Size + 1)
			for range pad {
				d.line = append(d.line, ' ')
			}
		}
		d.line = append(d.line, ' ', ' ')
		d.line = append(d.line, d.chars...)
	}
	d.line = append(d.line, '\n')
	if d.err == nil {
		_, d.err = d.w.Write(d.line)
	}
}

// appendValue formats one value as display_memory does: "%.*lx " in
// hexadecimal; for -d "%15ld", "%12d", "%5d", "%3d" (16- and 8-bit values
// are promoted unsigned, so they never print negative); for -D "%20lu",
// "%12u", "%5u", "%3u".
func appendValue(b []byte, v uint64, l memLayout) []byte {
	switch l.Style {
	case styleSigned:
		switch l.Size {
		case 8:
			return fmt.Appendf(b, "%15d ", int64(v))
		case 4:
			return fmt.Appendf(b, "%12d ", int32(v))
		case 2:
			return fmt.Appendf(b, "%5d ", v)
		default:
			return fmt.Appendf(b, "%3d ", v)
		}
	case styleUnsigned:
		switch l.Size {
		case 8:
			return fmt.Appendf(b, "%20d ", v)
		case 4:
			return fmt.Appendf(b, "%12d ", v)
		case 2:
			return fmt.Appendf(b, "%5d ", v)
		default:
			return fmt.Appendf(b, "%3d ", v)
		}
	}
	return fmt.Appendf(b, "%0*x ", 2*l.Size, v)
}

// value decodes a little-endian value of size bytes.
func value(b []byte, size int) uint64 {
	switch size {
	case 8:
		return binary.LittleEndian.Uint64(b)
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	}
	return uint64(b[0])
}

func swap(v uint64, size int) uint64 {
	if size == 2 {
		return uint64(bits.ReverseBytes16(uint16(v)))
	}
	return uint64(bits.ReverseBytes32(uint32(v)))
}

// printable is the ASCII column's rendering of a byte.
func printable(c byte) byte {
	if c >= 0x20 && c < 0x7f {
		return c
	}
	return '.'
}

// asciiPerLine is how many characters display_memory's ASCII mode (rd -a)
// prints on a line.
const asciiPerLine = 60

// asciiDumper writes rd -a's output: runs of printable characters, each
// run starting a new line with its address, lines broken every 60
// characters; other bytes are not shown.
type asciiDumper struct {
	w io.Writer
	// toEnd is set for -a without a count, reading to the string's end.
	toEnd     bool
	addr      uint64 // address of the next byte
	run       int    // characters in the current run
	displayed int    // characters written in all
	line      []byte
	err       error
}

func newASCIIDumper(w io.Writer, addr uint64, toEnd bool) *asciiDumper {
	return &asciiDumper{w: w, addr: addr, toEnd: toEnd}
}

// isPrint is C's isprint in the C locale.
func isPrint(c byte) bool { return c >= 0x20 && c < 0x7f }

func (d *asciiDumper) byte(c byte) {
	if isPrint(c) {
		if d.run%asciiPerLine == 0 {
			if d.displayed > 0 {
				d.line = append(d.line, '\n')
				d.flush()
			}
			d.line = fmt.Appendf(d.line, "%*x:  ", addressWidth, d.addr)
		}
		d.line = append(d.line, c)
		d.displayed++
		d.run++
	} else {
		d.run = 0
	}
	d.addr++
}

// finish ends the output with a newline. With a count, crash prints it
// even when no character was shown, so this does too. Reading to the end
// of a string, crash prints nothing when the string is empty, and leaves
// the line of a non-empty one unterminated (so whatever comes next
// continues it); salvage terminates it.
func (d *asciiDumper) finish() error {
	if d.toEnd && d.displayed == 0 {
		return d.err
	}
	d.line = append(d.line, '\n')
	d.flush()
	return d.err
}

func (d *asciiDumper) flush() {
	if d.err == nil && len(d.line) > 0 {
		_, d.err = d.w.Write(d.line)
	}
	d.line = d.line[:0]
}

func (d *lineDumper) symbol(v uint64) string {
	if d.l.Symbol == nil || d.l.Size != 8 || d.l.Style != styleHex {
		return ""
	}
	return d.l.Symbol(v)
}
