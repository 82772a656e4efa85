package analyze

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
)

// lineTable answers bt -l: the source file and line of a kernel text
// address, from the debug vmlinux's DWARF line programs. .debug_aranges
// says which compilation unit holds an address; that unit's line program
// gives the line (for code inlined from a header, the header's line, as
// gdb and so crash report it).
type lineTable struct {
	data   *dwarf.Data
	ranges []cuRange // sorted by start
}

type cuRange struct {
	start, end uint64
	unit       dwarf.Offset
}

// lineTables caches one table per vmlinux: reading the DWARF of a
// distribution kernel takes seconds and hundreds of megabytes, once.
var lineTables sync.Map // path → *lineTableOnce

type lineTableOnce struct {
	once sync.Once
	t    *lineTable
	err  error
}

func loadLineTable(path string) (*lineTable, error) {
	v, _ := lineTables.LoadOrStore(path, &lineTableOnce{})
	o := v.(*lineTableOnce)
	o.once.Do(func() { o.t, o.err = readLineTable(path) })
	return o.t, o.err
}

func readLineTable(path string) (*lineTable, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("%s: DWARF: %w", path, err)
	}
	sec := f.Section(".debug_aranges")
	if sec == nil {
		return nil, fmt.Errorf("%s has no .debug_aranges to find a line program by address", path)
	}
	ar, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: .debug_aranges: %w", path, err)
	}
	ranges, err := parseAranges(ar)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &lineTable{data: d, ranges: ranges}, nil
}

// parseAranges reads .debug_aranges (DWARF 5 section 6.1.2): sets of
// address ranges, each set naming its unit's offset in .debug_info.
func parseAranges(b []byte) ([]cuRange, error) {
	var out []cuRange
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		if off+4 > len(b) {
			return nil, fmt.Errorf(".debug_aranges: truncated set at %#x", off)
		}
		length := int(le.Uint32(b[off:]))
		hdr := 4
		if length == 0xffffffff {
			return nil, fmt.Errorf(".debug_aranges: 64-bit DWARF at %#x is not supported", off)
		}
		end := off + hdr + length
		if length < 8 || end > len(b) {
			return nil, fmt.Errorf(".debug_aranges: set at %#x of length %d overruns the section", off, length)
		}
		unit := dwarf.Offset(le.Uint32(b[off+hdr+2:]))
		addrSize, segSize := int(b[off+hdr+6]), int(b[off+hdr+7])
		if addrSize != 8 || segSize != 0 {
			return nil, fmt.Errorf(".debug_aranges: set at %#x has address size %d, segment size %d", off, addrSize, segSize)
		}
		// Tuples start at a multiple of twice the address size.
		p := off + hdr + 8
		if r := (p - off) % 16; r != 0 {
			p += 16 - r
		}
		for ; p+16 <= end; p += 16 {
			a, n := le.Uint64(b[p:]), le.Uint64(b[p+8:])
			if a == 0 && n == 0 {
				break
			}
			out = append(out, cuRange{start: a, end: a + n, unit: unit})
		}
		off = end
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}

// Line returns the file and line of a link-time text address.
func (t *lineTable) Line(pc uint64) (file string, line int, err error) {
	i := sort.Search(len(t.ranges), func(i int) bool { return t.ranges[i].start > pc }) - 1
	if i < 0 || pc >= t.ranges[i].end {
		return "", 0, fmt.Errorf("no compilation unit covers %#x", pc)
	}
	// aranges name a unit by its header; the reader wants its first
	// entry, just after the header: 11 bytes in DWARF 4, 12 in DWARF 5.
	var cu *dwarf.Entry
	for _, hdr := range []dwarf.Offset{11, 12} {
		r := t.data.Reader()
		r.Seek(t.ranges[i].unit + hdr)
		e, err := r.Next()
		if err == nil && e != nil && e.Tag == dwarf.TagCompileUnit {
			cu = e
			break
		}
	}
	if cu == nil {
		return "", 0, fmt.Errorf("no compilation unit at %#x", t.ranges[i].unit)
	}
	lr, err := t.data.LineReader(cu)
	if err != nil || lr == nil {
		return "", 0, errors.New("the unit has no line program")
	}
	// The row in force at pc: the last one at or below it in a sequence
	// that goes on past it. (LineReader.SeekPC gives up on the kernel's
	// units, whose sequences are not in address order.)
	// Of several rows at that address, gdb (and so crash) takes the last
	// that begins a statement, when one does.
	var e, prev, stmt dwarf.LineEntry
	var found, havePrev, haveStmt bool
	for lr.Next(&e) == nil {
		if havePrev && !prev.EndSequence && prev.Address <= pc && pc < e.Address {
			found = true
			break
		}
		if !havePrev || e.Address != prev.Address || prev.EndSequence {
			haveStmt = false
		}
		if e.IsStmt {
			stmt, haveStmt = e, true
		}
		prev, havePrev = e, true
	}
	if !found || prev.File == nil {
		return "", 0, fmt.Errorf("no line for %#x", pc)
	}
	e = prev
	if !e.IsStmt && haveStmt && stmt.Address == e.Address {
		e = stmt
	}
	name := e.File.Name
	// gdb names a file relative to the unit's (relative) build directory
	// as the two joined: debian/build/…/include/linux/ftrace.h.
	if dir, ok := cu.Val(dwarf.AttrCompDir).(string); ok && dir != "" && !filepath.IsAbs(name) {
		name = dir + "/" + name
	}
	return name, e.Line, nil
}
