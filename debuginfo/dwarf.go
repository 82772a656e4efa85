package debuginfo

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
)

// dwarfTypes is Types over the DWARF of a debug vmlinux or module. The
// file is mapped, not read: the name index is built at load (see
// dwarf_index.go) and DIEs become Types when first asked for.
type dwarfTypes struct {
	path    string
	source  string
	buildID string
	ix      *dwarfIndex
	sec     dwarfSections
	line    []byte         // .debug_line
	aranges []byte         // .debug_aranges: code ranges → unit (see LineAt)
	units   [][2]uint64    // [start, end) of each unit in .debug_info
	cus     []dwarf.Offset // offsets of the compile unit DIEs, ascending

	mu sync.Mutex // guards what follows
	// whole is debug/dwarf over all of .debug_info: for modules (which
	// debug/elf relocates) and for DWARF whose units refer into each
	// other. Otherwise each unit gets its own dwarf.Data when first
	// read: debug/dwarf parses every unit's abbreviations up front,
	// which for a kernel costs as much as the whole index.
	whole   *dwarf.Data
	perUnit map[int]*dwarf.Data
	conv    *dwarfConverter // created on first use
	lines   *lineState      // created on first LineAt
}

// LoadDWARF opens the DWARF of a debug vmlinux and indexes its names. It
// reads no type until one is asked for.
func LoadDWARF(vmlinuxPath string) (Types, error) {
	return loadDWARF(vmlinuxPath, "DWARF of "+vmlinuxPath)
}

// LoadDWARFModule opens the DWARF of a debug kernel module (.ko). Its
// types are the module's own view; types it only declares stay
// incomplete (look them up in the vmlinux's Types).
func LoadDWARFModule(koPath string) (Types, error) {
	return loadDWARF(koPath, "DWARF of module "+koPath)
}

func loadDWARF(path, source string) (*dwarfTypes, error) {
	img, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%s: not an ELF file (a compressed vmlinuz?): %w", path, err)
	}
	section := func(name string) ([]byte, error) {
		s := f.Section(name)
		if s == nil {
			return nil, nil
		}
		if s.Type == elf.SHT_NOBITS {
			return nil, nil
		}
		if f.Type == elf.ET_REL {
			// Relocatable (a .ko): let debug/elf relocate.
			return nil, errNeedsDebugElf
		}
		if s.Flags&elf.SHF_COMPRESSED != 0 {
			// Some distributions compress debug sections: inflate
			// into memory, then as if mapped.
			b, err := s.Data()
			if err != nil {
				return nil, fmt.Errorf("%s: section %s: %w", path, name, err)
			}
			return b, nil
		}
		end := s.Offset + s.Size
		if end > uint64(len(img)) || end < s.Offset {
			return nil, fmt.Errorf("%s: section %s at %#x+%#x runs past the file (%d bytes)", path, name, s.Offset, s.Size, len(img))
		}
		return img[s.Offset:end], nil
	}
	t := &dwarfTypes{path: path, source: source, buildID: BuildID(f)}
	var sec dwarfSections
	var line []byte
	ok := true
	for _, x := range []struct {
		name string
		dst  *[]byte
	}{
		{".debug_info", &sec.info}, {".debug_abbrev", &sec.abbrev}, {".debug_str", &sec.str},
		{".debug_line_str", &sec.lineStr}, {".debug_str_offsets", &sec.strOffsets}, {".debug_line", &line},
		{".debug_aranges", &t.aranges},
	} {
		b, err := section(x.name)
		if err == errNeedsDebugElf {
			ok = false
			break
		}
		if err != nil {
			return nil, err
		}
		*x.dst = b
	}
	if !ok {
		// A relocatable .ko, whose .debug_info needs relocating:
		// debug/elf does it, and a module is small enough for
		// debug/dwarf's own reader to index.
		d, err := f.DWARF()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t.whole = d
		ix, cus, err := buildIndexFromData(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t.ix, t.cus = ix, cus
		return t, nil
	}
	if len(sec.info) == 0 {
		return nil, fmt.Errorf("%s: no .debug_info (not a debug build; try the BTF in the kernel)", path)
	}
	t.sec, t.line, t.perUnit = sec, line, map[int]*dwarf.Data{}
	units, err := unitBounds(sec.info)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.units = units
	t.cus = make([]dwarf.Offset, len(units))
	for i, u := range units {
		t.cus[i] = dwarf.Offset(u[0] + unitHeaderSize(sec.info, u[0]))
	}
	ix := loadCachedIndex(t.buildID, len(sec.info))
	if ix == nil {
		ix, err = buildDwarfIndex(&sec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		storeCachedIndex(t.buildID, len(sec.info), ix)
	}
	t.ix = ix
	return t, nil
}

// converter returns the converter; t.mu held.
func (t *dwarfTypes) converter() (*dwarfConverter, error) {
	if t.conv == nil {
		if t.whole == nil && t.ix.RefAddr {
			d, err := t.newData(t.sec.info)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.path, err)
			}
			t.whole = d
		}
		t.conv = newDwarfConverter(t)
	}
	return t.conv, nil
}

func (t *dwarfTypes) newData(info []byte) (*dwarf.Data, error) {
	d, err := dwarf.New(t.sec.abbrev, nil, nil, info, t.line, nil, nil, t.sec.str)
	for _, x := range []struct {
		name string
		b    []byte
	}{{".debug_line_str", t.sec.lineStr}, {".debug_str_offsets", t.sec.strOffsets}} {
		if err == nil && x.b != nil {
			err = d.AddSection(x.name, x.b)
		}
	}
	return d, err
}

// unitReader reads DIEs of one unit with debug/dwarf, and gives them
// .debug_info offsets (a unit's own dwarf.Data numbers from its start).
type unitReader struct {
	rd   *dwarf.Reader
	data *dwarf.Data
	base dwarf.Offset
}

// readerAt returns a reader positioned at the DIE at off; t.mu held.
func (t *dwarfTypes) readerAt(off dwarf.Offset) (*unitReader, error) {
	if t.whole != nil {
		rd := t.whole.Reader()
		rd.Seek(off)
		return &unitReader{rd: rd, data: t.whole}, nil
	}
	i := sort.Search(len(t.units), func(i int) bool { return t.units[i][1] > uint64(off) })
	if i >= len(t.units) || uint64(off) < t.units[i][0] {
		return nil, fmt.Errorf("no unit holds offset %#x", off)
	}
	d, ok := t.perUnit[i]
	if !ok {
		var err error
		d, err = t.newData(t.sec.info[t.units[i][0]:t.units[i][1]])
		if err != nil {
			return nil, fmt.Errorf("unit at %#x: %w", t.units[i][0], err)
		}
		t.perUnit[i] = d
	}
	base := dwarf.Offset(t.units[i][0])
	rd := d.Reader()
	rd.Seek(off - base)
	return &unitReader{rd: rd, data: d, base: base}, nil
}

// next reads the next entry, with offsets into .debug_info.
func (u *unitReader) next() (*dwarf.Entry, error) {
	e, err := u.rd.Next()
	if e == nil || err != nil || u.base == 0 {
		return e, err
	}
	e.Offset += u.base
	for i := range e.Field {
		if e.Field[i].Class == dwarf.ClassReference {
			if o, ok := e.Field[i].Val.(dwarf.Offset); ok {
				e.Field[i].Val = o + u.base
			}
		}
	}
	return e, nil
}

var errNeedsDebugElf = fmt.Errorf("section needs debug/elf")

func mapFile(path string) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s: empty file", path)
	}
	// The mapping lives as long as the process: Types hand out slices of
	// it (strings, sections) and are typically used until exit.
	img, err := syscall.Mmap(int(fd.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// Not mappable (a pipe, an odd file system): read it.
		return os.ReadFile(path)
	}
	return img, nil
}

// BuildID returns an ELF file's GNU build ID (NT_GNU_BUILD_ID in any note
// section: a vmlinux keeps it in .notes among Xen's notes) as hex, or "".
func BuildID(f *elf.File) string {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz := int(f.ByteOrder.Uint32(b))
			descsz := int(f.ByteOrder.Uint32(b[4:]))
			typ := f.ByteOrder.Uint32(b[8:])
			nameEnd := 12 + (namesz+3)&^3
			descEnd := nameEnd + (descsz+3)&^3
			if namesz < 0 || descsz < 0 || descEnd > len(b) || nameEnd > len(b) {
				break
			}
			if typ == 3 && namesz == 4 && string(b[12:15]) == "GNU" {
				return hex.EncodeToString(b[nameEnd : nameEnd+descsz])
			}
			b = b[descEnd:]
		}
	}
	return ""
}

func (t *dwarfTypes) Source() string { return t.source }

func (t *dwarfTypes) notFound(what string) error {
	return &NotFoundError{What: what, Source: t.source}
}

func (t *dwarfTypes) lookup(ns nameSpace, name string) (*Type, error) {
	r, ok := t.ix.names[ns][name]
	if !ok {
		return nil, t.notFound(nameSpaceNames[ns] + " " + name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.converter()
	if err != nil {
		return nil, err
	}
	ty, err := c.convertTop(dwarf.Offset(r.Off))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", nameSpaceNames[ns], name, err)
	}
	return ty, nil
}

func (t *dwarfTypes) Struct(name string) (*Type, error)  { return t.lookup(nsStruct, name) }
func (t *dwarfTypes) Union(name string) (*Type, error)   { return t.lookup(nsUnion, name) }
func (t *dwarfTypes) Enum(name string) (*Type, error)    { return t.lookup(nsEnum, name) }
func (t *dwarfTypes) Typedef(name string) (*Type, error) { return t.lookup(nsTypedef, name) }

func (t *dwarfTypes) Var(name string) (*Type, error) {
	r, ok := t.ix.names[nsVar][name]
	if !ok {
		return nil, t.notFound("variable " + name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.converter()
	if err != nil {
		return nil, err
	}
	ty, err := c.typeOfTop(dwarf.Offset(r.Off))
	if err != nil {
		return nil, fmt.Errorf("variable %s: %w", name, err)
	}
	return ty, nil
}

func (t *dwarfTypes) Func(name string) (*Type, error) { return t.lookup(nsFunc, name) }

func (t *dwarfTypes) Named(spelling string) (*Type, error) {
	return namedType(t, spelling, func(name string) (*Type, error) {
		if dn, ok := dwarfBaseName[name]; ok {
			name = dn
		}
		if _, ok := t.ix.names[nsBase][name]; ok {
			return t.lookup(nsBase, name)
		}
		return nil, t.notFound(spelling)
	})
}
