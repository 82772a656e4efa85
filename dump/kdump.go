package dump

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// kdumpMemory is the Memory of one kdump-compressed file (or, for a split
// dump, of one part).
//
// Page states, from the two bitmaps and the descriptors:
//   - PFN at or past max_mapnr, or clear in the 1st bitmap: PageNotRAM.
//   - set in the 1st bitmap, clear in the 2nd: PageExcluded. makedumpfile
//     clears the 2nd bitmap for every page its -d filter drops; for a
//     kdump-compressed output that never includes zero pages: with -d bit 1
//     a zero page stays in the 2nd bitmap and its descriptor points at the
//     shared zero page (write_kdump_pages_cyclic; only ELF output, -E,
//     clears zero pages from the bitmap). So a clear bit does not say the
//     page was zero, and it is reported as excluded, as crash does.
//   - descriptor pointing at the shared zero page: PageZero.
//   - descriptor never written (offset 0, as left by an interrupted
//     makedumpfile) or lying past the end of the file: PageMissing.
//   - otherwise PagePresent; a descriptor or page data that does not
//     decode is reported by ReadPhys as a FormatError naming PFN and offset.
type kdumpMemory struct {
	r        io.ReaderAt
	size     int64
	name     string
	lay      *kdumpLayout
	pageSize int64

	ram    *pfnBitmap // 1st bitmap
	dumped *pfnBitmap // 2nd bitmap, with ranks
	// descBase is the rank of the first frame whose descriptor this file
	// holds: 0, or for a split part the rank of its start_pfn (a part's
	// table starts with its own first page, crash's pfn_to_pos).
	descBase uint64
	// zeroOff is the offset of the shared zero page, or -1. Both
	// makedumpfile (-d bit 1) and QEMU write it first in the page data,
	// right after the descriptor table, and point every zero page's
	// descriptor at it.
	zeroOff int64

	codecs *pageCodecs
	cache  *pageCache

	rangesOnce sync.Once
	ranges     []Range
}

// pageCacheSize is the number of decoded pages a dump keeps.
const pageCacheSize = 64

// openKdump reads a kdump-compressed file.
func openKdump(r io.ReaderAt, size int64, name string) (*File, error) {
	m, err := newKdumpMemory(r, size, name)
	if err != nil {
		return nil, err
	}
	f, err := m.file()
	if err != nil {
		m.codecs.close()
		return nil, err
	}
	return f, nil
}

func newKdumpMemory(r io.ReaderAt, size int64, name string) (*kdumpMemory, error) {
	lay, err := readKdumpLayout(r, size, name)
	if err != nil {
		return nil, err
	}
	m := &kdumpMemory{
		r: r, size: size, name: name, lay: lay,
		pageSize: lay.blockSize,
		zeroOff:  -1,
	}
	// Only the bytes that describe max_mapnr frames are read; the rest of
	// the bitmap blocks is padding. Both lie within the file, so their
	// size is bounded by the file's.
	if m.ram, err = readPFNBitmap(r, lay.bitmapOff, lay.maxMapnr, false, name); err != nil {
		return nil, err
	}
	if m.dumped, err = readPFNBitmap(r, lay.bitmapOff+lay.bitmapLen, lay.maxMapnr, true, name); err != nil {
		return nil, err
	}
	if lay.split {
		m.descBase = m.dumped.rank(lay.startPFN)
	}

	zero := lay.descOff + pageDescSize*int64(min(m.dumped.count(), uint64(size)))
	if zero+m.pageSize <= size {
		buf := make([]byte, m.pageSize)
		if err := kdumpRead(r, buf, zero, name); err == nil && isZeroPage(buf) {
			m.zeroOff = zero
		}
	}
	m.codecs = newPageCodecs(int(m.pageSize))
	m.cache = newPageCache(pageCacheSize)
	return m, nil
}

func isZeroPage(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// file builds the File for a single kdump-compressed file: header facts,
// codecs and the ELF notes of the sub-header.
func (m *kdumpMemory) file() (*File, error) {
	lay := m.lay
	f := &File{
		Path:          m.name,
		Format:        FormatKdump,
		Inner:         FormatKdump,
		Arch:          lay.arch,
		Memory:        m,
		HeaderVersion: int(lay.hdr.Version),
		DumpLevel:     -1,
		Incomplete:    lay.incomplete,
		CPUs:          max(int(lay.hdr.NrCPUs), 0),
		Compression:   m.scanCodecs(),
	}
	if lay.hdr.Version >= 1 {
		f.DumpLevel = int(lay.sub.DumpLevel)
	}
	if lay.split {
		// One part of a split dump, opened alone: say which range it holds.
		f.Parts = []Part{{Path: m.name, Size: m.size, StartPFN: lay.startPFN, EndPFN: lay.endPFN}}
	}
	if err := m.readNotes(f); err != nil {
		return nil, err
	}
	f.closers = append(f.closers, m.codecs.close)
	return f, nil
}

// readNotes parses the ELF notes makedumpfile copies from /proc/vmcore's
// PT_NOTE into the sub-header area (offset_note, size_note; header
// version 4), and VMCOREINFO from offset_vmcoreinfo when no note held it.
func (m *kdumpMemory) readNotes(f *File) error {
	lay := m.lay
	region := func(off int64, sz uint64, what string, field int64) ([]byte, error) {
		if off < 0 || sz > uint64(m.size) || off > m.size-int64(sz) {
			return nil, &FormatError{File: m.name, Off: m.pageSize + field,
				Msg: fmt.Sprintf("kdump-compressed: %s (%d bytes at offset %#x) goes beyond the end of the %d-byte file", what, sz, off, m.size)}
		}
		b := make([]byte, sz)
		if err := kdumpRead(m.r, b, off, m.name); err != nil {
			return nil, err
		}
		return b, nil
	}
	if lay.hdr.Version >= 4 && lay.sub.OffsetNote != 0 && lay.sub.SizeNote != 0 {
		b, err := region(lay.sub.OffsetNote, lay.sub.SizeNote, "the ELF notes", 48)
		if err != nil {
			return err
		}
		notes, err := parseNotes(b, m.name, lay.sub.OffsetNote)
		if err != nil {
			return err
		}
		if err := f.applyNotes(notes); err != nil {
			return err
		}
	}
	if f.VMCoreInfo == nil && lay.hdr.Version >= 3 && lay.sub.OffsetVMCoreInfo != 0 && lay.sub.SizeVMCoreInfo != 0 {
		b, err := region(lay.sub.OffsetVMCoreInfo, lay.sub.SizeVMCoreInfo, "VMCOREINFO", 32)
		if err != nil {
			return err
		}
		info, err := ParseVMCoreInfo(b)
		if info == nil {
			info = &VMCoreInfo{Raw: string(b), Err: err}
		}
		f.VMCoreInfo = info
	}
	return nil
}

// scanCodecs lists the codecs of the dump: the one the header's status
// declares, plus those of a sample of descriptors (the first ones and
// evenly spaced windows over the table), so that opening stays cheap.
// "none" is listed only when no compressed page is seen: makedumpfile and
// QEMU store a page raw when compressing it would not make it smaller, so
// raw pages in a compressed dump are the codec's fallback, not a codec of
// their own.
func (m *kdumpMemory) scanCodecs() []Compression {
	seen := map[Compression]bool{}
	for _, c := range []struct {
		bit  uint32
		name Compression
	}{{kdumpZlib, "zlib"}, {kdumpLZO, "lzo"}, {kdumpSnappy, "snappy"}, {kdumpZstd, "zstd"}} {
		if m.lay.hdr.Status&c.bit != 0 {
			seen[c.name] = true
		}
	}
	total := m.dumped.rank(m.lay.endPFN) - m.descBase
	if avail := uint64(max(m.size-m.lay.descOff, 0)) / pageDescSize; total > avail {
		total = avail
	}
	const windows, perWindow = 16, 512
	buf := make([]byte, perWindow*pageDescSize)
	for w := uint64(0); w < windows; w++ {
		first := total * w / windows
		if total <= windows*perWindow {
			first = w * perWindow // a small table is read whole
		}
		if first >= total {
			break
		}
		cnt := min(total-first, perWindow)
		b := buf[:cnt*pageDescSize]
		if kdumpRead(m.r, b, m.lay.descOff+int64(first)*pageDescSize, m.name) != nil {
			break
		}
		for i := 0; i < len(b); i += pageDescSize {
			d := parsePageDescriptor(b[i:])
			if d.Offset == 0 || d.Offset == m.zeroOff && d.Flags&kdumpCodecMask == 0 {
				continue
			}
			seen[d.codec()] = true
		}
	}
	if len(seen) > 1 {
		delete(seen, "none")
	}
	if len(seen) == 0 {
		seen["none"] = true
	}
	out := make([]Compression, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// descriptor finds the page_desc of pfn and the page's state.
func (m *kdumpMemory) descriptor(pfn uint64) (pageDescriptor, PageState, error) {
	var d pageDescriptor
	if !m.ram.test(pfn) {
		return d, PageNotRAM, nil
	}
	if !m.dumped.test(pfn) {
		return d, PageExcluded, nil
	}
	if pfn < m.lay.startPFN || pfn >= m.lay.endPFN {
		// A split part opened alone: another part holds this page.
		return d, PageMissing, nil
	}
	idx := m.dumped.rank(pfn) - m.descBase
	if idx >= uint64(m.size)/pageDescSize {
		return d, PageMissing, nil
	}
	off := m.lay.descOff + int64(idx)*pageDescSize
	if off > m.size-pageDescSize || !m.written(off, pageDescSize) {
		return d, PageMissing, nil
	}
	var b [pageDescSize]byte
	if err := kdumpRead(m.r, b[:], off, m.name); err != nil {
		return d, PagePresent, err
	}
	d = parsePageDescriptor(b[:])
	switch {
	case d.Offset == 0:
		// Never written: makedumpfile stopped (disk full, killed)
		// before this page; crash calls it PAGE_INCOMPLETE.
		return d, PageMissing, nil
	case m.zeroOff >= 0 && d.Offset == m.zeroOff && d.Flags&kdumpCodecMask == 0 && int64(d.Size) == m.pageSize:
		return d, PageZero, nil
	case d.Offset < m.lay.descOff || d.Size == 0 || int64(d.Size) > m.pageSize ||
		d.codec() == "none" && int64(d.Size) != m.pageSize:
		return d, PagePresent, &FormatError{File: m.name, Off: off,
			Msg: fmt.Sprintf("kdump-compressed: page descriptor of PFN %#x is corrupt (data offset %#x, size %d, flags %#x; page size %d)", pfn, d.Offset, d.Size, d.Flags, m.pageSize)}
	case d.Offset > m.size-int64(d.Size) || !m.written(d.Offset, int64(d.Size)):
		return d, PageMissing, nil
	}
	return d, PagePresent, nil
}

// sparseReaderAt is a ReaderAt with holes, such as a flattened stream's
// view: written reports whether every byte of [off, off+n) was written.
type sparseReaderAt interface {
	written(off, n int64) bool
}

// written reports whether the file holds data (not a hole) at [off,
// off+n): in a flattened stream cut short, descriptors and page data that
// never arrived read as zeroes, and are missing rather than corrupt.
func (m *kdumpMemory) written(off, n int64) bool {
	if s, ok := m.r.(sparseReaderAt); ok {
		return s.written(off, n)
	}
	return true
}

func (m *kdumpMemory) State(pfn uint64) PageState {
	_, st, _ := m.descriptor(pfn)
	return st
}

func (m *kdumpMemory) PageSize() int { return int(m.pageSize) }

func (m *kdumpMemory) Ranges() []Range {
	m.rangesOnce.Do(func() {
		for _, r := range m.ram.runs() {
			m.ranges = append(m.ranges, Range{Start: r.Start * uint64(m.pageSize), End: r.End * uint64(m.pageSize)})
		}
	})
	return append([]Range(nil), m.ranges...)
}

// page returns the decoded contents of a present page (nil for a zero
// page) and the page's state.
func (m *kdumpMemory) page(pfn uint64) ([]byte, PageState, error) {
	if data := m.cache.get(pfn); data != nil {
		return data, PagePresent, nil
	}
	d, st, err := m.descriptor(pfn)
	if err != nil || st != PagePresent {
		return nil, st, err
	}
	src := make([]byte, d.Size)
	if err := kdumpRead(m.r, src, d.Offset, m.name); err != nil {
		return nil, st, err
	}
	data := make([]byte, m.pageSize)
	if err := m.codecs.decode(data, src, d.codec()); err != nil {
		return nil, st, &FormatError{File: m.name, Off: d.Offset,
			Msg: fmt.Sprintf("kdump-compressed: page of PFN %#x (physical %#x): %d bytes of %s data do not decode: %v", pfn, pfn*uint64(m.pageSize), d.Size, d.codec(), err)}
	}
	m.cache.put(pfn, data)
	return data, PagePresent, nil
}

func (m *kdumpMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	return readPages(p, addr, uint64(m.pageSize), m.name, m.page)
}

// readPages implements ReadPhys over a function that returns one page.
func readPages(p []byte, addr, pageSize uint64, name string, page func(pfn uint64) ([]byte, PageState, error)) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		if a < addr {
			return n, &PageError{File: name, Addr: a, State: PageNotRAM}
		}
		off := a % pageSize
		chunk := min(uint64(len(p)-n), pageSize-off)
		data, st, err := page(a / pageSize)
		if err != nil {
			return n, err
		}
		switch st {
		case PagePresent:
			copy(p[n:n+int(chunk)], data[off:])
		case PageZero:
			clear(p[n : n+int(chunk)])
		default:
			return n, &PageError{File: name, Addr: a, State: st}
		}
		n += int(chunk)
	}
	return n, nil
}
