package debuginfo

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// The name index: which DIE defines each named struct, union, enum,
// typedef, base type, global variable and function. A kernel's
// .debug_info is hundreds of megabytes over thousands of compile units,
// so the index is built by a scanner of our own that reads only the
// top-level DIEs of each unit (jumping over their children by
// DW_AT_sibling) and only the attributes it needs, in parallel over the
// units; debug/dwarf decodes every attribute of every DIE, which is ten
// times slower. Entries are converted into Types later, on demand, with
// debug/dwarf. Layouts: DWARF 5 §7.5 (unit headers, abbreviations, forms).

// dieRef locates one candidate DIE for a name.
type dieRef struct {
	Off  uint64 // offset of the DIE in .debug_info
	Size int64  // DW_AT_byte_size, -1 when absent
	Line uint32 // DW_AT_decl_line, 0 when absent
	Decl bool   // DW_AT_declaration: not a definition
}

// better reports whether r should replace old as the index's choice:
// definitions beat declarations, then the lowest offset wins, so the
// index is the same whatever the scheduling of the workers.
func (r dieRef) better(old dieRef) bool {
	if r.Decl != old.Decl {
		return !r.Decl
	}
	return r.Off < old.Off
}

// nameSpace is one C name space of the index.
type nameSpace uint8

const (
	nsStruct nameSpace = iota
	nsUnion
	nsEnum
	nsTypedef
	nsBase
	nsVar
	nsFunc
	nsCount
)

var nameSpaceNames = [nsCount]string{"struct", "union", "enum", "typedef", "base type", "variable", "function"}

// dwarfIndex maps names to DIEs, one map per name space.
type dwarfIndex struct {
	names [nsCount]map[string]dieRef
	Units int
	// RefAddr: some DIE refers into another unit (DW_FORM_ref_addr), so
	// units cannot be read one at a time (see dwarfTypes.readerAt).
	RefAddr bool
}

// indexSizeHint sizes the maps for a kernel (6.1: 7k structs, 35k
// variables, 74k functions) so that they do not rehash while scanning.
var indexSizeHint = [nsCount]int{nsStruct: 4 << 10, nsUnion: 128, nsEnum: 1 << 10, nsTypedef: 2 << 10, nsBase: 32, nsVar: 16 << 10, nsFunc: 32 << 10}

func newDwarfIndex() *dwarfIndex {
	ix := &dwarfIndex{}
	for i := range ix.names {
		ix.names[i] = make(map[string]dieRef, indexSizeHint[i])
	}
	return ix
}

func (ix *dwarfIndex) add(ns nameSpace, name []byte, r dieRef) {
	m := ix.names[ns]
	if old, ok := m[string(name)]; ok && !r.better(old) {
		return
	}
	m[string(name)] = r
}

func (ix *dwarfIndex) merge(o *dwarfIndex) {
	ix.RefAddr = ix.RefAddr || o.RefAddr
	for ns := range o.names {
		m := ix.names[ns]
		for k, r := range o.names[ns] {
			if old, ok := m[k]; ok && !r.better(old) {
				continue
			}
			m[k] = r
		}
	}
}

// dwarfSections are the raw sections the scanner reads.
type dwarfSections struct {
	info, abbrev, str, lineStr, strOffsets []byte
}

// DWARF constants used by the scanner (DWARF 5 §7.5.4–7.5.6).
const (
	dwTagEnumeration = 0x04
	dwTagStructure   = 0x13
	dwTagTypedef     = 0x16
	dwTagUnion       = 0x17
	dwTagBaseType    = 0x24
	dwTagSubprogram  = 0x2e
	dwTagVariable    = 0x34

	dwAtSibling        = 0x01
	dwAtName           = 0x03
	dwAtByteSize       = 0x0b
	dwAtDeclLine       = 0x3b
	dwAtDeclaration    = 0x3c
	dwAtStrOffsetsBase = 0x72
	dwAtSpecification  = 0x47

	formAddr          = 0x01
	formBlock2        = 0x03
	formBlock4        = 0x04
	formData2         = 0x05
	formData4         = 0x06
	formData8         = 0x07
	formString        = 0x08
	formBlock         = 0x09
	formBlock1        = 0x0a
	formData1         = 0x0b
	formFlag          = 0x0c
	formSdata         = 0x0d
	formStrp          = 0x0e
	formUdata         = 0x0f
	formRefAddr       = 0x10
	formRef1          = 0x11
	formRef2          = 0x12
	formRef4          = 0x13
	formRef8          = 0x14
	formRefUdata      = 0x15
	formIndirect      = 0x16
	formSecOffset     = 0x17
	formExprloc       = 0x18
	formFlagPresent   = 0x19
	formStrx          = 0x1a
	formAddrx         = 0x1b
	formRefSup4       = 0x1c
	formStrpSup       = 0x1d
	formData16        = 0x1e
	formLineStrp      = 0x1f
	formRefSig8       = 0x20
	formImplicitConst = 0x21
	formLoclistx      = 0x22
	formRnglistx      = 0x23
	formRefSup8       = 0x24
	formStrx1         = 0x25
	formStrx2         = 0x26
	formStrx3         = 0x27
	formStrx4         = 0x28
	formAddrx1        = 0x29
	formAddrx2        = 0x2a
	formAddrx3        = 0x2b
	formAddrx4        = 0x2c
	formGNUAddrIndex  = 0x1f01
	formGNUStrIndex   = 0x1f02
	formGNURefAlt     = 0x1f20
	formGNUStrpAlt    = 0x1f21
)

// dwarfFormatError is a malformed .debug_info or .debug_abbrev.
type dwarfFormatError struct {
	Section string
	Off     uint64
	Msg     string
}

func (e *dwarfFormatError) Error() string {
	return fmt.Sprintf("dwarf: %s at offset %#x: %s", e.Section, e.Off, e.Msg)
}

type abbrevAttr struct {
	attr, form uint32
	implicit   int64
}

type abbrev struct {
	tag      uint32
	children bool
	attrs    []abbrevAttr
	// fixed is the total size of the attributes when every form has a
	// fixed size (the DIE is then skipped in one step), else -1.
	fixed int
	// interesting: the tag goes into the index.
	ns         nameSpace
	indexed    bool
	hasSibling bool
}

type abbrevTable []abbrev // by code (dense in practice); tag 0 marks a gap

func parseAbbrevs(b []byte, off uint64, addrSize, offSize int) (abbrevTable, error) {
	if off >= uint64(len(b)) {
		return nil, &dwarfFormatError{".debug_abbrev", off, "offset beyond the section"}
	}
	p := int(off)
	nAbbrevs, nAttrs := countAbbrevs(b[p:])
	t := make(abbrevTable, 1, nAbbrevs+1)
	slab := make([]abbrevAttr, 0, nAttrs) // attribute lists of all abbreviations, carved up
	for {
		code, n := uleb(b[p:])
		if n == 0 {
			return nil, &dwarfFormatError{".debug_abbrev", uint64(p), "truncated"}
		}
		p += n
		if code == 0 {
			return t, nil
		}
		tag, n := uleb(b[p:])
		p += n
		if p >= len(b) {
			return nil, &dwarfFormatError{".debug_abbrev", uint64(p), "truncated"}
		}
		a := abbrev{tag: uint32(tag), children: b[p] != 0}
		p++
		first := len(slab)
		for {
			at, n1 := uleb(b[p:])
			p += n1
			fm, n2 := uleb(b[p:])
			p += n2
			if n1 == 0 || n2 == 0 {
				return nil, &dwarfFormatError{".debug_abbrev", uint64(p), "truncated"}
			}
			if at == 0 && fm == 0 {
				break
			}
			aa := abbrevAttr{attr: uint32(at), form: uint32(fm)}
			if fm == formImplicitConst {
				v, n := sleb(b[p:])
				p += n
				aa.implicit = v
			}
			if at == dwAtSibling {
				a.hasSibling = true
			}
			slab = append(slab, aa)
		}
		// When append moved the slab, earlier abbreviations keep the
		// old array: their capped slices never see later writes.
		a.attrs = slab[first:len(slab):len(slab)]
		a.fixed = 0
		for _, aa := range a.attrs {
			s := fixedFormSize(aa.form, addrSize, offSize)
			if s < 0 {
				a.fixed = -1
				break
			}
			a.fixed += s
		}
		switch a.tag {
		case dwTagStructure:
			a.ns, a.indexed = nsStruct, true
		case dwTagUnion:
			a.ns, a.indexed = nsUnion, true
		case dwTagEnumeration:
			a.ns, a.indexed = nsEnum, true
		case dwTagTypedef:
			a.ns, a.indexed = nsTypedef, true
		case dwTagBaseType:
			a.ns, a.indexed = nsBase, true
		case dwTagVariable:
			a.ns, a.indexed = nsVar, true
		case dwTagSubprogram:
			a.ns, a.indexed = nsFunc, true
		}
		if a.indexed {
			// Named, or (variables and functions) the definition of
			// an earlier declaration, named through DW_AT_specification.
			named := false
			for _, aa := range a.attrs {
				named = named || aa.attr == dwAtName ||
					(aa.attr == dwAtSpecification && (a.ns == nsVar || a.ns == nsFunc))
			}
			a.indexed = named
		}
		if code > uint64(4*nAbbrevs+256) {
			// Compilers number abbreviations 1, 2, 3…: the table is a
			// slice indexed by code, which a wild code must not size.
			return nil, &dwarfFormatError{".debug_abbrev", off, fmt.Sprintf("abbreviation code %d in a table of %d", code, nAbbrevs)}
		}
		for uint64(len(t)) <= code {
			t = append(t, abbrev{})
		}
		t[code] = a
	}
}

// countAbbrevs counts the abbreviations and attribute specifications of
// the table at the start of b, to allocate it in one piece.
func countAbbrevs(b []byte) (abbrevs, attrs int) {
	p := 0
	for p < len(b) {
		code, n0 := uleb(b[p:])
		if n0 == 0 || code == 0 {
			return
		}
		_, n1 := uleb(b[p+n0:])
		p += n0 + n1 + 1 // code, tag, DW_CHILDREN
		abbrevs++
		for p < len(b) {
			at, n1 := uleb(b[p:])
			fm, n2 := uleb(b[p+n1:])
			if n1 == 0 || n2 == 0 {
				return
			}
			p += n1 + n2
			if at == 0 && fm == 0 {
				break
			}
			if fm == formImplicitConst {
				_, n := sleb(b[p:])
				p += n
			}
			attrs++
		}
	}
	return
}

// fixedFormSize is the size of a form's value, or -1 when it varies.
func fixedFormSize(form uint32, addrSize, offSize int) int {
	switch form {
	case formAddr:
		return addrSize
	case formData1, formRef1, formFlag, formStrx1, formAddrx1:
		return 1
	case formData2, formRef2, formStrx2, formAddrx2:
		return 2
	case formStrx3, formAddrx3:
		return 3
	case formData4, formRef4, formRefSup4, formStrx4, formAddrx4:
		return 4
	case formData8, formRef8, formRefSig8, formRefSup8:
		return 8
	case formData16:
		return 16
	case formStrp, formLineStrp, formSecOffset, formRefAddr, formStrpSup, formGNURefAlt, formGNUStrpAlt:
		return offSize
	case formFlagPresent, formImplicitConst:
		return 0
	}
	return -1
}

// unitScanner scans one compile unit at a time.
type unitScanner struct {
	sec     *dwarfSections
	ix      *dwarfIndex
	abbrevs map[uint64]abbrevTable
	// per unit
	addrSize, offSize int
	unitOff           uint64
	strOffBase        uint64
}

// unitBounds lists the (offset, end) of every unit in .debug_info.
func unitBounds(info []byte) ([][2]uint64, error) {
	var out [][2]uint64
	var p uint64
	for p < uint64(len(info)) {
		if p+4 > uint64(len(info)) {
			return nil, &dwarfFormatError{".debug_info", p, "truncated unit header"}
		}
		l := uint64(binary.LittleEndian.Uint32(info[p:]))
		hdr := uint64(4)
		if l == 0xffffffff {
			if p+12 > uint64(len(info)) {
				return nil, &dwarfFormatError{".debug_info", p, "truncated unit header"}
			}
			l = binary.LittleEndian.Uint64(info[p+4:])
			hdr = 12
		} else if l >= 0xfffffff0 {
			return nil, &dwarfFormatError{".debug_info", p, fmt.Sprintf("reserved unit length %#x", l)}
		}
		end := p + hdr + l
		if end > uint64(len(info)) || end < p {
			return nil, &dwarfFormatError{".debug_info", p, fmt.Sprintf("unit length %#x runs past the section", l)}
		}
		out = append(out, [2]uint64{p, end})
		p = end
	}
	return out, nil
}

// buildDwarfIndex scans every unit with one worker per CPU.
func buildDwarfIndex(sec *dwarfSections) (*dwarfIndex, error) {
	units, err := unitBounds(sec.info)
	if err != nil {
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > len(units) {
		workers = max(1, len(units))
	}
	var next atomic.Int64
	results := make([]*dwarfIndex, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &unitScanner{sec: sec, ix: newDwarfIndex(), abbrevs: map[uint64]abbrevTable{}}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(units) {
					break
				}
				if err := s.scanUnitSafely(units[i][0], units[i][1]); err != nil {
					errs[w] = err
					next.Store(int64(len(units)))
					return
				}
			}
			results[w] = s.ix
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	ix := results[0]
	for _, o := range results[1:] {
		ix.merge(o)
	}
	ix.Units = len(units)
	return ix, nil
}

func (s *unitScanner) fail(p uint64, format string, args ...any) error {
	return &dwarfFormatError{".debug_info", p, fmt.Sprintf(format, args...)}
}

// scanUnitSafely turns an out-of-range read of a malformed unit (the
// scanner trusts lengths for speed) into an error naming the unit.
func (s *unitScanner) scanUnitSafely(start, end uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.fail(start, "malformed unit: %v", r)
		}
	}()
	return s.scanUnit(start, end)
}

func (s *unitScanner) scanUnit(start, end uint64) error {
	b := s.sec.info[:end]
	p := start
	s.offSize = 4
	if binary.LittleEndian.Uint32(b[p:]) == 0xffffffff {
		s.offSize = 8
		p += 12
	} else {
		p += 4
	}
	if p+2 > end {
		return s.fail(start, "truncated unit header")
	}
	vers := binary.LittleEndian.Uint16(b[p:])
	p += 2
	var abbrevOff uint64
	readOff := func() uint64 {
		if s.offSize == 8 {
			v := binary.LittleEndian.Uint64(b[p:])
			p += 8
			return v
		}
		v := uint64(binary.LittleEndian.Uint32(b[p:]))
		p += 4
		return v
	}
	switch {
	case vers >= 2 && vers <= 4:
		if p+uint64(s.offSize)+1 > end {
			return s.fail(start, "truncated unit header")
		}
		abbrevOff = readOff()
		s.addrSize = int(b[p])
		p++
	case vers == 5:
		if p+2+uint64(s.offSize) > end {
			return s.fail(start, "truncated unit header")
		}
		ut := b[p]
		s.addrSize = int(b[p+1])
		p += 2
		abbrevOff = readOff()
		switch ut {
		case 1, 3: // DW_UT_compile, DW_UT_partial
		case 4, 5: // skeleton, split_compile: dwo_id
			p += 8
		default: // type units: not used by the kernel; nothing to index
			return nil
		}
	default:
		return s.fail(start, "unsupported DWARF version %d", vers)
	}
	tab, ok := s.abbrevs[abbrevOff]
	if !ok {
		var err error
		tab, err = parseAbbrevs(s.sec.abbrev, abbrevOff, s.addrSize, s.offSize)
		if err != nil {
			return err
		}
		s.abbrevs[abbrevOff] = tab
		for i := range tab {
			for _, a := range tab[i].attrs {
				if a.form == formRefAddr || a.form == formGNURefAlt {
					s.ix.RefAddr = true
				}
			}
		}
	}
	s.unitOff = start
	s.strOffBase = 0
	// The unit DIE: only DW_AT_str_offsets_base matters (for strx names).
	code, n := uleb(b[p:])
	if code == 0 || code >= uint64(len(tab)) || tab[code].tag == 0 {
		return s.fail(p, "bad abbreviation code %d for the unit DIE", code)
	}
	p += uint64(n)
	cu := &tab[code]
	for _, a := range cu.attrs {
		if a.attr == dwAtStrOffsetsBase {
			v, q, err := s.value(b, p, a.form)
			if err != nil {
				return err
			}
			s.strOffBase = v
			p = q
			continue
		}
		q, err := s.skip(b, p, a.form)
		if err != nil {
			return err
		}
		p = q
	}
	if !cu.children {
		return nil
	}
	// Top-level DIEs.
	for p < end {
		die := p
		code, n := uleb(b[p:])
		p += uint64(n)
		if code == 0 {
			return nil
		}
		if code >= uint64(len(tab)) || tab[code].tag == 0 {
			return s.fail(die, "bad abbreviation code %d", code)
		}
		a := &tab[code]
		if !a.indexed && !a.hasSibling && a.fixed >= 0 {
			p += uint64(a.fixed)
			if a.children {
				q, err := s.skipChildren(b, p, tab)
				if err != nil {
					return err
				}
				p = q
			}
			continue
		}
		var name []byte
		ref := dieRef{Off: die, Size: -1}
		sibling, spec := uint64(0), uint64(0)
		for _, at := range a.attrs {
			switch at.attr {
			case dwAtName:
				if a.indexed {
					nm, q, err := s.str(b, p, at.form)
					if err != nil {
						return err
					}
					name, p = nm, q
					continue
				}
			case dwAtSpecification:
				if a.ns == nsVar || a.ns == nsFunc {
					v, q, err := s.value(b, p, at.form)
					if err != nil {
						return err
					}
					if at.form != formRefAddr {
						v += s.unitOff
					}
					spec, p = v, q
					continue
				}
			case dwAtSibling, dwAtByteSize, dwAtDeclLine, dwAtDeclaration:
				var v uint64
				if at.form == formImplicitConst {
					v = uint64(at.implicit)
				} else {
					var err error
					var q uint64
					v, q, err = s.value(b, p, at.form)
					if err != nil {
						return err
					}
					p = q
				}
				switch at.attr {
				case dwAtSibling:
					if at.form != formRefAddr {
						v += s.unitOff
					}
					sibling = v
				case dwAtByteSize:
					ref.Size = int64(v)
				case dwAtDeclLine:
					ref.Line = uint32(v)
				case dwAtDeclaration:
					ref.Decl = v != 0 || at.form == formFlagPresent
				}
				continue
			}
			q, err := s.skip(b, p, at.form)
			if err != nil {
				return err
			}
			p = q
		}
		if a.indexed && len(name) == 0 && spec > start && spec < die {
			// int x[4]; after extern int x[]; — the definition,
			// which the index prefers (it has the array bound).
			name = s.nameAt(b, spec, tab)
		}
		if a.indexed && len(name) > 0 {
			s.ix.add(a.ns, name, ref)
		}
		if a.children {
			if sibling > p && sibling <= end {
				p = sibling
			} else {
				q, err := s.skipChildren(b, p, tab)
				if err != nil {
					return err
				}
				p = q
			}
		}
	}
	return nil
}

// nameAt reads the DW_AT_name of the DIE at off in the current unit, or
// nil.
func (s *unitScanner) nameAt(b []byte, off uint64, tab abbrevTable) []byte {
	code, n := uleb(b[off:])
	if code == 0 || code >= uint64(len(tab)) || tab[code].tag == 0 {
		return nil
	}
	p := off + uint64(n)
	for _, at := range tab[code].attrs {
		if at.attr == dwAtName {
			nm, _, err := s.str(b, p, at.form)
			if err != nil {
				return nil
			}
			return nm
		}
		q, err := s.skip(b, p, at.form)
		if err != nil {
			return nil
		}
		p = q
	}
	return nil
}

// skipChildren skips a sibling chain up to and including its null entry.
func (s *unitScanner) skipChildren(b []byte, p uint64, tab abbrevTable) (uint64, error) {
	depth := 1
	for depth > 0 {
		if p >= uint64(len(b)) {
			return 0, s.fail(p, "children run past the unit")
		}
		code, n := uleb(b[p:])
		die := p
		p += uint64(n)
		if code == 0 {
			depth--
			continue
		}
		if code >= uint64(len(tab)) || tab[code].tag == 0 {
			return 0, s.fail(die, "bad abbreviation code %d", code)
		}
		a := &tab[code]
		if a.fixed >= 0 {
			p += uint64(a.fixed)
		} else {
			for _, at := range a.attrs {
				q, err := s.skip(b, p, at.form)
				if err != nil {
					return 0, err
				}
				p = q
			}
		}
		if a.children {
			depth++
		}
	}
	return p, nil
}

// skip returns the offset after an attribute value of the given form.
func (s *unitScanner) skip(b []byte, p uint64, form uint32) (uint64, error) {
	if n := fixedFormSize(form, s.addrSize, s.offSize); n >= 0 {
		return p + uint64(n), nil
	}
	if p >= uint64(len(b)) {
		return 0, s.fail(p, "attribute runs past the unit")
	}
	switch form {
	case formString:
		for q := p; q < uint64(len(b)); q++ {
			if b[q] == 0 {
				return q + 1, nil
			}
		}
		return 0, s.fail(p, "unterminated string")
	case formSdata, formUdata, formRefUdata, formStrx, formAddrx, formLoclistx, formRnglistx, formGNUAddrIndex, formGNUStrIndex:
		_, n := uleb(b[p:])
		return p + uint64(n), nil
	case formBlock1:
		return p + 1 + uint64(b[p]), nil
	case formBlock2:
		return p + 2 + uint64(binary.LittleEndian.Uint16(b[p:])), nil
	case formBlock4:
		return p + 4 + uint64(binary.LittleEndian.Uint32(b[p:])), nil
	case formBlock, formExprloc:
		l, n := uleb(b[p:])
		return p + uint64(n) + l, nil
	case formIndirect:
		f, n := uleb(b[p:])
		return s.skip(b, p+uint64(n), uint32(f))
	}
	return 0, s.fail(p, "unknown form %#x", form)
}

// value decodes an integer-valued attribute (constants, flags, references).
func (s *unitScanner) value(b []byte, p uint64, form uint32) (uint64, uint64, error) {
	if p >= uint64(len(b)) {
		return 0, 0, s.fail(p, "attribute runs past the unit")
	}
	le := binary.LittleEndian
	switch form {
	case formData1, formRef1, formFlag:
		return uint64(b[p]), p + 1, nil
	case formData2, formRef2:
		return uint64(le.Uint16(b[p:])), p + 2, nil
	case formData4, formRef4, formRefSup4:
		return uint64(le.Uint32(b[p:])), p + 4, nil
	case formData8, formRef8, formRefSup8:
		return le.Uint64(b[p:]), p + 8, nil
	case formSecOffset, formRefAddr:
		if s.offSize == 8 {
			return le.Uint64(b[p:]), p + 8, nil
		}
		return uint64(le.Uint32(b[p:])), p + 4, nil
	case formUdata, formRefUdata:
		v, n := uleb(b[p:])
		return v, p + uint64(n), nil
	case formSdata:
		v, n := sleb(b[p:])
		return uint64(v), p + uint64(n), nil
	case formFlagPresent:
		return 1, p, nil
	case formIndirect:
		f, n := uleb(b[p:])
		return s.value(b, p+uint64(n), uint32(f))
	}
	q, err := s.skip(b, p, form)
	return 0, q, err
}

// str decodes a string-valued attribute without copying it.
func (s *unitScanner) str(b []byte, p uint64, form uint32) ([]byte, uint64, error) {
	le := binary.LittleEndian
	var sec []byte
	var off uint64
	q := p
	switch form {
	case formString:
		for q < uint64(len(b)) && b[q] != 0 {
			q++
		}
		if q >= uint64(len(b)) {
			return nil, 0, s.fail(p, "unterminated string")
		}
		return b[p:q], q + 1, nil
	case formStrp, formLineStrp:
		sec = s.sec.str
		if form == formLineStrp {
			sec = s.sec.lineStr
		}
		if s.offSize == 8 {
			off, q = le.Uint64(b[p:]), p+8
		} else {
			off, q = uint64(le.Uint32(b[p:])), p+4
		}
	case formStrx, formStrx1, formStrx2, formStrx3, formStrx4, formGNUStrIndex:
		var idx uint64
		switch form {
		case formStrx1:
			idx, q = uint64(b[p]), p+1
		case formStrx2:
			idx, q = uint64(le.Uint16(b[p:])), p+2
		case formStrx3:
			idx, q = uint64(b[p])|uint64(b[p+1])<<8|uint64(b[p+2])<<16, p+3
		case formStrx4:
			idx, q = uint64(le.Uint32(b[p:])), p+4
		default:
			v, n := uleb(b[p:])
			idx, q = v, p+uint64(n)
		}
		at := s.strOffBase + idx*uint64(s.offSize)
		if at+uint64(s.offSize) > uint64(len(s.sec.strOffsets)) {
			return nil, 0, s.fail(p, "string index %d beyond .debug_str_offsets", idx)
		}
		if s.offSize == 8 {
			off = le.Uint64(s.sec.strOffsets[at:])
		} else {
			off = uint64(le.Uint32(s.sec.strOffsets[at:]))
		}
		sec = s.sec.str
	default:
		q, err := s.skip(b, p, form)
		return nil, q, err
	}
	if off >= uint64(len(sec)) {
		return nil, 0, s.fail(p, "string offset %#x beyond its section", off)
	}
	e := off
	for e < uint64(len(sec)) && sec[e] != 0 {
		e++
	}
	return sec[off:e], q, nil
}

func uleb(b []byte) (uint64, int) {
	var v uint64
	var shift uint
	for i, c := range b {
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func sleb(b []byte) (int64, int) {
	var v int64
	var shift uint
	for i, c := range b {
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1
		}
	}
	return 0, 0
}

// unitHeaderSize is the size of the unit header at start, so that
// start+size is the offset of its unit DIE.
func unitHeaderSize(info []byte, start uint64) uint64 {
	off, n := uint64(4), uint64(4)
	if binary.LittleEndian.Uint32(info[start:]) == 0xffffffff {
		off, n = 8, 12
	}
	vers := binary.LittleEndian.Uint16(info[start+n:])
	n += 2
	if vers >= 5 {
		n += 2 + off
		switch info[start+n-2-off] {
		case 4, 5:
			n += 8
		case 2, 6:
			n += 8 + off
		}
		return n
	}
	return n + off + 1
}

// buildIndexFromData indexes with debug/dwarf's reader: for modules,
// whose sections debug/elf must relocate first.
func buildIndexFromData(d *dwarf.Data) (*dwarfIndex, []dwarf.Offset, error) {
	ix := newDwarfIndex()
	var cus []dwarf.Offset
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, nil, err
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			cus = append(cus, e.Offset)
			ix.Units++
			continue
		}
		if e.Tag == 0 {
			continue
		}
		if e.Children {
			r.SkipChildren()
		}
		ns := tagNamespace(e.Tag)
		if ns == nsCount {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if name == "" {
			continue
		}
		ref := dieRef{Off: uint64(e.Offset), Size: -1}
		if v, ok := e.Val(dwarf.AttrByteSize).(int64); ok {
			ref.Size = v
		}
		if v, ok := e.Val(dwarf.AttrDeclLine).(int64); ok {
			ref.Line = uint32(v)
		}
		ref.Decl, _ = e.Val(dwarf.AttrDeclaration).(bool)
		ix.add(ns, []byte(name), ref)
	}
	return ix, cus, nil
}

// tagNamespace says which name index a DIE's tag belongs to; nsCount for
// tags that are not indexed by name.
func tagNamespace(tag dwarf.Tag) nameSpace {
	switch tag {
	case dwarf.TagStructType:
		return nsStruct
	case dwarf.TagUnionType:
		return nsUnion
	case dwarf.TagEnumerationType:
		return nsEnum
	case dwarf.TagTypedef:
		return nsTypedef
	case dwarf.TagBaseType:
		return nsBase
	case dwarf.TagVariable:
		return nsVar
	case dwarf.TagSubprogram:
		return nsFunc
	}
	return nsCount
}
