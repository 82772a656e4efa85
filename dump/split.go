package dump

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
)

// A split dump is what makedumpfile --split writes: several
// kdump-compressed files of one crash, each holding the pages of one PFN
// range (kdump_sub_header split, start_pfn/end_pfn, 64-bit in header
// version 6; makedumpfile.c write_kdump_header). Every part carries the
// same headers, notes and full bitmaps; its descriptor table starts with
// the first dumped page of its own range (crash's pfn_to_pos).

// splitPart is one opened part.
type splitPart struct {
	path string
	size int64
	mem  *kdumpMemory
	file *File // the part opened on its own: notes, codecs
}

// splitMemory serves the pages of all parts.
type splitMemory struct {
	parts []*splitPart // sorted by start PFN, covering [0, max_mapnr)
}

// openSplit opens the parts of a split dump together.
func openSplit(paths []string) (*File, error) {
	var parts []*splitPart
	var closers []func() error
	fail := func(err error) (*File, error) {
		for _, c := range closers {
			c()
		}
		return nil, err
	}
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, fh.Close)
		st, err := fh.Stat()
		if err != nil {
			return fail(err)
		}
		part, err := openSplitPart(fh, st.Size(), p)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, part.file.closers...)
		part.file.closers = nil
		parts = append(parts, part)
	}
	f, err := joinSplitParts(parts)
	if err != nil {
		return fail(err)
	}
	f.closers = closers
	return f, nil
}

// openSplitPart opens one part: a kdump-compressed file, or a flattened
// stream holding one.
func openSplitPart(r io.ReaderAt, size int64, name string) (*splitPart, error) {
	f, err := NewFile(r, size, name)
	if err != nil {
		return nil, err
	}
	m, ok := f.Memory.(*kdumpMemory)
	if !ok {
		f.Close()
		return nil, &FormatError{File: name, Off: 0, Msg: fmt.Sprintf("not a part of a split dump: it is a %s file, not kdump-compressed", f.Format)}
	}
	if !m.lay.split {
		f.Close()
		return nil, &FormatError{File: name, Off: m.pageSize + 12, Msg: "not a part of a split dump: its kdump sub-header has no split flag (a whole dump is opened alone)"}
	}
	return &splitPart{path: name, size: size, mem: m, file: f}, nil
}

// joinSplitParts checks that the parts belong to one dump and cover all
// of its frames, and builds the File.
func joinSplitParts(parts []*splitPart) (*File, error) {
	// By range; makedumpfile gives the PFNs past the last dumpable page to
	// the last part, and on a small machine several parts can be empty
	// ranges at max_mapnr: those are ordered by name.
	sort.Slice(parts, func(i, j int) bool {
		a, b := parts[i].mem.lay, parts[j].mem.lay
		if a.startPFN != b.startPFN {
			return a.startPFN < b.startPFN
		}
		if a.endPFN != b.endPFN {
			return a.endPFN < b.endPFN
		}
		return parts[i].path < parts[j].path
	})
	first := parts[0]
	fl := first.mem.lay
	for _, p := range parts[1:] {
		l := p.mem.lay
		mismatch := func(what string, a, b any) error {
			return &FormatError{File: p.path, Off: -1, Msg: fmt.Sprintf("split part does not belong with %s: %s is %v here, %v there", first.path, what, b, a)}
		}
		switch {
		case l.hdr.Version != fl.hdr.Version:
			return nil, mismatch("header_version", fl.hdr.Version, l.hdr.Version)
		case l.blockSize != fl.blockSize:
			return nil, mismatch("block_size", fl.blockSize, l.blockSize)
		case l.maxMapnr != fl.maxMapnr:
			return nil, mismatch("max_mapnr", fl.maxMapnr, l.maxMapnr)
		case l.hdr.Machine != fl.hdr.Machine || l.hdr.Release != fl.hdr.Release || l.hdr.UTSVersion != fl.hdr.UTSVersion || l.hdr.Nodename != fl.hdr.Nodename:
			return nil, mismatch("utsname", fl.hdr.Nodename+" "+fl.hdr.Release+" "+fl.hdr.UTSVersion, l.hdr.Nodename+" "+l.hdr.Release+" "+l.hdr.UTSVersion)
		case l.hdr.Timestamp != fl.hdr.Timestamp:
			return nil, mismatch("the timestamp", fl.hdr.Timestamp, l.hdr.Timestamp)
		case l.hdr.NrCPUs != fl.hdr.NrCPUs:
			return nil, mismatch("nr_cpus", fl.hdr.NrCPUs, l.hdr.NrCPUs)
		case l.sub.DumpLevel != fl.sub.DumpLevel:
			return nil, mismatch("dump_level", fl.sub.DumpLevel, l.sub.DumpLevel)
		case !slices.Equal(p.mem.ram.words, first.mem.ram.words):
			return nil, mismatch("the RAM bitmap", "one map", "another")
		case !sameNotes(p.file.Notes, first.file.Notes):
			return nil, mismatch("the ELF notes", fmt.Sprintf("%d notes", len(first.file.Notes)), fmt.Sprintf("%d different notes", len(p.file.Notes)))
		}
	}
	ps := uint64(fl.blockSize)
	next := uint64(0)
	for _, p := range parts {
		l := p.mem.lay
		switch {
		case l.startPFN > next:
			return nil, &FormatError{File: first.path, Off: -1, Msg: fmt.Sprintf("split dump is missing a part: no part holds PFNs [%#x, %#x) (physical %#x–%#x); %d parts given", next, l.startPFN, next*ps, l.startPFN*ps, len(parts))}
		case l.startPFN < next:
			return nil, &FormatError{File: p.path, Off: -1, Msg: fmt.Sprintf("split part holds PFNs [%#x, %#x), overlapping another part that holds PFNs up to %#x (the same part given twice?)", l.startPFN, l.endPFN, next)}
		}
		next = l.endPFN
	}
	if next < fl.maxMapnr {
		return nil, &FormatError{File: first.path, Off: -1, Msg: fmt.Sprintf("split dump is missing a part: no part holds PFNs [%#x, %#x) (physical %#x–%#x); %d parts given", next, fl.maxMapnr, next*ps, fl.maxMapnr*ps, len(parts))}
	}

	ff := first.file
	f := &File{
		Path:          first.path,
		Format:        FormatSplit,
		Inner:         FormatKdump,
		Arch:          ff.Arch,
		Memory:        &splitMemory{parts: parts},
		HeaderVersion: ff.HeaderVersion,
		DumpLevel:     ff.DumpLevel,
		CPUs:          ff.CPUs,
		Notes:         ff.Notes,
		PRStatus:      ff.PRStatus,
		QEMUCPUs:      ff.QEMUCPUs,
		VMCoreInfo:    ff.VMCoreInfo,
	}
	codecs := map[Compression]bool{}
	for _, p := range parts {
		f.Incomplete = f.Incomplete || p.file.Incomplete
		for _, c := range p.file.Compression {
			codecs[c] = true
		}
		part := Part{Path: p.path, Size: p.size, StartPFN: p.mem.lay.startPFN, EndPFN: p.mem.lay.endPFN}
		if p.file.Format == FormatFlattened {
			part.Records = p.file.Parts[0].Records
		}
		f.Parts = append(f.Parts, part)
	}
	if len(codecs) > 1 {
		delete(codecs, "none")
	}
	for c := range codecs {
		f.Compression = append(f.Compression, c)
	}
	sort.Strings(f.Compression)
	return f, nil
}

func sameNotes(a, b []Note) bool {
	return slices.EqualFunc(a, b, func(x, y Note) bool {
		return x.Name == y.Name && x.Type == y.Type && bytes.Equal(x.Desc, y.Desc)
	})
}

// part returns the part holding pfn, or nil past max_mapnr.
func (m *splitMemory) part(pfn uint64) *kdumpMemory {
	i := sort.Search(len(m.parts), func(i int) bool { return m.parts[i].mem.lay.endPFN > pfn })
	if i == len(m.parts) {
		return nil
	}
	return m.parts[i].mem
}

func (m *splitMemory) State(pfn uint64) PageState {
	p := m.part(pfn)
	if p == nil {
		return PageNotRAM
	}
	return p.State(pfn)
}

func (m *splitMemory) page(pfn uint64) ([]byte, PageState, error) {
	p := m.part(pfn)
	if p == nil {
		return nil, PageNotRAM, nil
	}
	return p.page(pfn)
}

func (m *splitMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	return readPages(p, addr, uint64(m.parts[0].mem.pageSize), m.parts[0].path, m.page)
}

func (m *splitMemory) PageSize() int   { return m.parts[0].mem.PageSize() }
func (m *splitMemory) Ranges() []Range { return m.parts[0].mem.Ranges() }
