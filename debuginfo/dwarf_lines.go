package debuginfo

import (
	"debug/dwarf"
	"encoding/binary"
	"errors"
	"path"
	"sort"
)

// LineLookup is Types that can tell the source line of a code address
// (DWARF can; BTF cannot).
type LineLookup interface {
	// LineAt returns the source file and line of a link-time (not
	// KASLR-relocated) code address.
	LineAt(pc uint64) (file string, line int, ok bool)
}

// codeRange is one .debug_aranges entry: [lo, hi) belongs to a unit.
type codeRange struct {
	lo, hi uint64
	unit   uint64 // offset of the unit header in .debug_info
}

// lineState is what LineAt keeps: the ranges, and each unit's line
// table reader once used.
type lineState struct {
	ranges []codeRange
	tables map[uint64][]lineRow // by unit offset; nil: no table
	err    error
}

// lineRow is one row of a unit's line table.
type lineRow struct {
	addr uint64
	end  bool // end of a sequence: addr is past its last instruction
	stmt bool // a recommended breakpoint location (is_stmt)
	file string
	line int
}

// LineAt finds the unit that holds pc in .debug_aranges and looks pc up
// in that unit's line table; units are read on first need.
func (t *dwarfTypes) LineAt(pc uint64) (string, int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines == nil {
		t.lines = &lineState{tables: map[uint64][]lineRow{}}
		t.lines.ranges, t.lines.err = parseAranges(t.aranges)
	}
	ls := t.lines
	if ls.err != nil {
		return "", 0, false
	}
	i := sort.Search(len(ls.ranges), func(i int) bool { return ls.ranges[i].hi > pc })
	if i == len(ls.ranges) || pc < ls.ranges[i].lo {
		return "", 0, false
	}
	unit := ls.ranges[i].unit
	rows, ok := ls.tables[unit]
	if !ok {
		rows = t.lineRows(unit)
		ls.tables[unit] = rows
	}
	// Of the rows at the last address at or below pc, the last is_stmt
	// one, else the last, as gdb takes them (at a function's entry, the
	// line of code inlined there). A unit's sequences (.text,
	// .init.text, .sched.text…) are not in address order in the table,
	// which LineReader.SeekPC assumes: hence rows.
	j := sort.Search(len(rows), func(j int) bool { return rows[j].addr > pc })
	if j == 0 || rows[j-1].end {
		return "", 0, false
	}
	best := rows[j-1]
	for k := j - 1; k >= 0 && rows[k].addr == best.addr; k-- {
		if rows[k].stmt && !rows[k].end {
			best = rows[k]
			break
		}
	}
	return best.file, best.line, true
}

// lineRows reads the line table of the unit whose header is at off,
// sorted by address (a sequence's end before a row at the same address);
// nil when the unit has none. t.mu held.
func (t *dwarfTypes) lineRows(off uint64) []lineRow {
	lr, compDir := t.lineReader(off)
	if lr == nil {
		return nil
	}
	var rows []lineRow
	var e dwarf.LineEntry
	for lr.Next(&e) == nil {
		r := lineRow{addr: e.Address, end: e.EndSequence, stmt: e.IsStmt, line: e.Line}
		if e.File != nil {
			r.file = displayName(compDir, e.File.Name)
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].addr != rows[j].addr {
			return rows[i].addr < rows[j].addr
		}
		return rows[i].end && !rows[j].end
	})
	return rows
}

// lineReader is the line table reader of the unit whose header is at
// off; nil when it has none. t.mu held.
func (t *dwarfTypes) lineReader(off uint64) (*dwarf.LineReader, string) {
	j := sort.Search(len(t.units), func(j int) bool { return t.units[j][0] >= off })
	if j == len(t.units) || t.units[j][0] != off {
		return nil, ""
	}
	ur, err := t.readerAt(t.cus[j])
	if err != nil {
		return nil, ""
	}
	cu, err := ur.rd.Next() // the unit's own offsets: LineReader wants them
	if err != nil || cu == nil {
		return nil, ""
	}
	lr, err := ur.data.LineReader(cu)
	if err != nil {
		return nil, ""
	}
	compDir, _ := cu.Val(dwarf.AttrCompDir).(string)
	return lr, compDir
}

// displayName is a source file as gdb (and so crash) shows it: a
// relative name under the unit's compilation directory, itself possibly
// relative (Debian builds in debian/build/build_amd64_none_cloud-amd64).
func displayName(compDir, name string) string {
	if !path.IsAbs(name) && compDir != "" {
		return path.Join(compDir, name)
	}
	return path.Clean(name)
}

// parseAranges reads .debug_aranges (DWARF 2–5 §6.1.2): per unit, a
// header and (address, length) pairs ending with (0, 0). Sorted by
// address for lookup.
func parseAranges(b []byte) ([]codeRange, error) {
	if len(b) == 0 {
		return nil, errors.New("no .debug_aranges")
	}
	le := binary.LittleEndian
	var out []codeRange
	for p := uint64(0); p+4 <= uint64(len(b)); {
		length := uint64(le.Uint32(b[p:]))
		hdr := uint64(4)
		offSize := uint64(4)
		if length == 0xffffffff {
			if p+12 > uint64(len(b)) {
				return nil, errors.New("truncated .debug_aranges")
			}
			length, hdr, offSize = le.Uint64(b[p+4:]), 12, 8
		}
		end := p + hdr + length
		if end > uint64(len(b)) || end < p {
			return nil, errors.New("truncated .debug_aranges")
		}
		q := p + hdr + 2 // past the version
		if q+offSize+2 > end {
			return nil, errors.New("truncated .debug_aranges header")
		}
		var unit uint64
		if offSize == 8 {
			unit = le.Uint64(b[q:])
		} else {
			unit = uint64(le.Uint32(b[q:]))
		}
		q += offSize
		addrSize, segSize := uint64(b[q]), uint64(b[q+1])
		q += 2
		if addrSize != 8 && addrSize != 4 {
			return nil, errors.New("unsupported address size in .debug_aranges")
		}
		tuple := 2*addrSize + segSize
		// Tuples start at a multiple of the tuple size from the header.
		if r := (q - p) % tuple; r != 0 {
			q += tuple - r
		}
		for ; q+tuple <= end; q += tuple {
			a, n := q+segSize, q+segSize+addrSize
			var lo, ln uint64
			if addrSize == 8 {
				lo, ln = le.Uint64(b[a:]), le.Uint64(b[n:])
			} else {
				lo, ln = uint64(le.Uint32(b[a:])), uint64(le.Uint32(b[n:]))
			}
			if lo == 0 && ln == 0 {
				break
			}
			out = append(out, codeRange{lo, lo + ln, unit})
		}
		p = end
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out, nil
}
