package dump

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ELF64 core layout (include/uapi/linux/elf.h; System V gABI).
const (
	ehdrSize     = 64 // sizeof(Elf64_Ehdr)
	phdrSize     = 56 // sizeof(Elf64_Phdr)
	shdrSize     = 64 // sizeof(Elf64_Shdr)
	elfClass64   = 2  // e_ident[EI_CLASS] ELFCLASS64
	elfData2LSB  = 1  // e_ident[EI_DATA] ELFDATA2LSB
	etCore       = 4  // e_type ET_CORE
	emX86_64     = 62 // e_machine EM_X86_64
	emAArch64    = 183
	ptLoad       = 1
	ptNote       = 4
	pnXNum       = 0xffff // e_phnum PN_XNUM: the count is in section 0's sh_info
	shdrInfoOff  = 44     // Elf64_Shdr.sh_info
	defaultPageS = 4096
)

// dumpELFIncomplete is makedumpfile's DUMP_ELF_INCOMPLETE (makedumpfile.c):
// set in e_flags when it could not write the whole dump (e.g. ENOSPC).
const dumpELFIncomplete = 0x1

// notPAddr is makedumpfile's NOT_PADDR (ULONGLONG_MAX): a PT_LOAD with no
// physical address, which holds no RAM.
const notPAddr = ^uint64(0)

// elfProg is the part of an Elf64_Phdr a dump reader needs.
type elfProg struct {
	typ    uint32
	off    uint64 // p_offset
	paddr  uint64 // p_paddr
	filesz uint64
	memsz  uint64
	align  uint64 // p_align
}

// openELF reads an ELF64 core: a /proc/vmcore copy, QEMU dump-guest-memory
// output or makedumpfile -E output.
func openELF(r io.ReaderAt, size int64, name string) (*File, error) {
	fail := func(off int64, format string, args ...any) (*File, error) {
		return nil, &FormatError{File: name, Off: off, Msg: fmt.Sprintf(format, args...)}
	}
	var eh [ehdrSize]byte
	if err := readFull(r, eh[:], 0, size); err != nil {
		return fail(0, "ELF header: %v", err)
	}
	if eh[4] != elfClass64 {
		return fail(4, "ELF class %d: only ELF64 cores are supported (ELFCLASS64 = 2)", eh[4])
	}
	if eh[5] != elfData2LSB {
		return fail(5, "ELF data encoding %d: only little-endian cores are supported (ELFDATA2LSB = 1)", eh[5])
	}
	le := binary.LittleEndian
	if t := le.Uint16(eh[16:]); t != etCore {
		return fail(16, "ELF type %d is not a core file (ET_CORE = 4)", t)
	}
	f := &File{Path: name, Format: FormatELF, Inner: FormatELF, DumpLevel: -1,
		Compression: []Compression{"none"}}
	switch m := le.Uint16(eh[18:]); m {
	case emX86_64:
		f.Arch = ArchX86_64
	case emAArch64:
		f.Arch = ArchARM64
	default:
		return fail(18, "ELF machine %d is not a supported architecture (EM_X86_64 = 62, EM_AARCH64 = 183)", m)
	}
	f.Incomplete = le.Uint32(eh[48:])&dumpELFIncomplete != 0

	phoff := le.Uint64(eh[32:])
	shoff := le.Uint64(eh[40:])
	phentsize := le.Uint16(eh[54:])
	phnum := uint64(le.Uint16(eh[56:]))
	shentsize := le.Uint16(eh[58:])
	if phnum == pnXNum {
		// Too many program headers for e_phnum (QEMU with many RAM
		// blocks): the real count is section header 0's sh_info.
		if shoff == 0 || shentsize < shdrSize {
			return fail(56, "e_phnum is PN_XNUM but there is no section header 0 to hold the count (e_shoff %#x, e_shentsize %d)", shoff, shentsize)
		}
		var sh [shdrSize]byte
		if err := readFull(r, sh[:], shoff, size); err != nil {
			return fail(int64(min(shoff, 1<<62)), "section header 0 (for PN_XNUM): %v", err)
		}
		phnum = uint64(le.Uint32(sh[shdrInfoOff:]))
		if phnum == 0 {
			return fail(int64(shoff), "e_phnum is PN_XNUM but section header 0's sh_info counts no program headers")
		}
	}
	if phnum == 0 {
		return fail(56, "ELF core has no program headers")
	}
	if phentsize != phdrSize {
		return fail(54, "program header size %d, expected %d (Elf64_Phdr)", phentsize, phdrSize)
	}
	if phoff > uint64(size) || phnum > (uint64(size)-phoff)/phdrSize {
		return fail(int64(min(phoff, 1<<62)), "%d program headers of %d bytes run past the end of the %d-byte file", phnum, phdrSize, size)
	}
	ph := make([]byte, phnum*phdrSize)
	if err := readFull(r, ph, phoff, size); err != nil {
		return fail(int64(phoff), "program headers: %v", err)
	}
	progs := make([]elfProg, 0, phnum)
	for i := uint64(0); i < phnum; i++ {
		b := ph[i*phdrSize:]
		progs = append(progs, elfProg{
			typ:    le.Uint32(b),
			off:    le.Uint64(b[8:]),
			paddr:  le.Uint64(b[24:]),
			filesz: le.Uint64(b[32:]),
			memsz:  le.Uint64(b[40:]),
			align:  le.Uint64(b[48:]),
		})
	}

	// Notes first: VMCOREINFO's PAGESIZE decides how Memory counts pages.
	var notes []Note
	var noteBytes uint64
	for i, p := range progs {
		if p.typ != ptNote || p.filesz == 0 {
			continue
		}
		if len(notes) == 0 {
			f.NoteAlign = p.align
		}
		phAt := int64(phoff + uint64(i)*phdrSize)
		if p.off > uint64(size) || p.filesz > uint64(size)-p.off {
			return fail(phAt, "PT_NOTE segment [%#x, +%#x) runs past the end of the %d-byte file (truncated?)", p.off, p.filesz, size)
		}
		if noteBytes += p.filesz; noteBytes > uint64(size) {
			return fail(phAt, "PT_NOTE segments add up to more than the %d-byte file", size)
		}
		b := make([]byte, p.filesz)
		if err := readFull(r, b, p.off, size); err != nil {
			return fail(int64(p.off), "PT_NOTE segment: %v", err)
		}
		ns, err := parseNotes(b, name, int64(p.off))
		if err != nil {
			return nil, err
		}
		notes = append(notes, ns...)
	}
	if err := f.applyNotes(notes); err != nil {
		return nil, err
	}

	pageSize := defaultPageS
	if ps, ok := f.VMCoreInfo.PageSize(); ok && ps&(ps-1) == 0 && ps >= 512 {
		pageSize = ps
	}
	f.Memory = newELFMemory(r, size, name, pageSize, progs)
	return f, nil
}

// readFull reads len(b) bytes at off, naming a short file as such.
func readFull(r io.ReaderAt, b []byte, off uint64, size int64) error {
	if off > uint64(size) || uint64(len(b)) > uint64(size)-off {
		return fmt.Errorf("needs bytes [%#x, %#x) but the file ends at %#x (truncated?)", off, off+uint64(len(b)), size)
	}
	n, err := r.ReadAt(b, int64(off))
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("file ends at %#x, before %#x (truncated?)", off+uint64(n), off+uint64(len(b)))
	}
	return err
}

// elfSpan is a run of physical addresses [start, end) with one state:
// PagePresent (bytes at file offset off onward), PageExcluded (in a
// PT_LOAD's p_memsz beyond its p_filesz) or PageMissing (should be in the
// file, which ends first).
type elfSpan struct {
	start, end uint64
	off        uint64 // file offset of start, for PagePresent
	state      PageState
}

// elfMemory is the physical memory of an ELF core, read lazily with
// ReadAt. spans is sorted and disjoint, so lookups are a binary search.
type elfMemory struct {
	r        io.ReaderAt
	name     string
	pageSize uint64
	spans    []elfSpan
	ram      []Range
}

// newELFMemory indexes the PT_LOAD segments.
//
// makedumpfile -E drops runs of 256 or more excluded pages by ending a
// PT_LOAD's file data (p_filesz) before its memory (p_memsz), so that tail
// is PageExcluded. Segments may overlap: a /proc/vmcore from kexec-tools
// maps the kernel text twice, in its own PT_LOAD and in the RAM around it.
// Where they do, bytes in a file win over excluded ones, and otherwise the
// earlier program header wins.
func newELFMemory(r io.ReaderAt, size int64, name string, pageSize int, progs []elfProg) *elfMemory {
	m := &elfMemory{r: r, name: name, pageSize: uint64(pageSize)}
	var pieces []elfPiece
	for i, p := range progs {
		if p.typ != ptLoad || p.memsz == 0 || p.paddr == notPAddr {
			continue
		}
		end := p.paddr + p.memsz
		if end < p.paddr { // wraps: keep what fits below 2^64
			end = ^uint64(0)
		}
		data := min(p.filesz, end-p.paddr)
		// Bytes the file holds, bytes it should hold but does not.
		inFile := data
		if p.off >= uint64(size) {
			inFile = 0
		} else if data > uint64(size)-p.off {
			inFile = uint64(size) - p.off
		}
		add := func(start, end uint64, st PageState, off uint64) {
			if start < end {
				pieces = append(pieces, elfPiece{elfSpan{start, end, off, st}, i})
			}
		}
		add(p.paddr, p.paddr+inFile, PagePresent, p.off)
		add(p.paddr+inFile, p.paddr+data, PageMissing, 0)
		add(p.paddr+data, end, PageExcluded, 0)
	}
	m.spans = overlay(pieces)
	for _, s := range m.spans {
		if n := len(m.ram); n > 0 && m.ram[n-1].End == s.start {
			m.ram[n-1].End = s.end
		} else {
			m.ram = append(m.ram, Range{s.start, s.end})
		}
	}
	return m
}

// elfPiece is a span from program header number ph, before overlaps are
// resolved.
type elfPiece struct {
	elfSpan
	ph int
}

// rank orders pieces where they overlap: lower wins.
func (p elfPiece) rank() int {
	r := p.ph
	if p.state != PagePresent {
		r += 1 << 40
	}
	return r
}

// overlay resolves overlapping pieces into sorted, disjoint spans with a
// sweep over their boundaries, keeping the best-ranked piece active at
// each point; O(n log n) however the pieces overlap.
func overlay(pieces []elfPiece) []elfSpan {
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].start < pieces[j].start })
	overlapping := false
	for i := 1; i < len(pieces); i++ {
		if pieces[i].start < pieces[i-1].end {
			overlapping = true
			break
		}
	}
	var out []elfSpan
	emit := func(s elfSpan) {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.end == s.start && last.state == s.state &&
				(s.state != PagePresent || last.off+(last.end-last.start) == s.off) {
				last.end = s.end
				return
			}
		}
		out = append(out, s)
	}
	if !overlapping {
		for _, p := range pieces {
			emit(p.elfSpan)
		}
		return out
	}
	bounds := make([]uint64, 0, 2*len(pieces))
	for _, p := range pieces {
		bounds = append(bounds, p.start, p.end)
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })
	active := &pieceHeap{}
	next := 0
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		if lo == hi {
			continue
		}
		for next < len(pieces) && pieces[next].start <= lo {
			heap.Push(active, pieces[next])
			next++
		}
		for active.Len() > 0 && (*active)[0].end <= lo {
			heap.Pop(active)
		}
		if active.Len() == 0 {
			continue
		}
		best := (*active)[0]
		s := elfSpan{start: lo, end: hi, state: best.state}
		if best.state == PagePresent {
			s.off = best.off + (lo - best.start)
		}
		emit(s)
	}
	return out
}

// pieceHeap is a min-heap of pieces by rank (container/heap).
type pieceHeap []elfPiece

func (h pieceHeap) Len() int           { return len(h) }
func (h pieceHeap) Less(i, j int) bool { return h[i].rank() < h[j].rank() }
func (h pieceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pieceHeap) Push(x any)        { *h = append(*h, x.(elfPiece)) }
func (h *pieceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// find returns the index of the first span ending after addr.
func (m *elfMemory) find(addr uint64) int {
	return sort.Search(len(m.spans), func(i int) bool { return m.spans[i].end > addr })
}

func (m *elfMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		if a < addr { // past the top of the address space
			return n, &PageError{File: m.name, Addr: a, State: PageNotRAM}
		}
		i := m.find(a)
		if i == len(m.spans) || m.spans[i].start > a {
			return n, &PageError{File: m.name, Addr: a, State: PageNotRAM}
		}
		s := m.spans[i]
		if s.state != PagePresent {
			return n, &PageError{File: m.name, Addr: a, State: s.state}
		}
		chunk := p[n:]
		if left := s.end - a; uint64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		k, err := m.r.ReadAt(chunk, int64(s.off+(a-s.start)))
		n += k
		if k < len(chunk) {
			if err == nil || errors.Is(err, io.EOF) {
				// The file shrank after it was opened.
				return n, &PageError{File: m.name, Addr: addr + uint64(n), State: PageMissing}
			}
			return n, fmt.Errorf("%s: reading physical address %#x: %w", m.name, addr+uint64(n), err)
		}
	}
	return n, nil
}

// State is the state of the page's RAM bytes taken together: present
// only when all of them can be read. (A page may be partly RAM: e820
// ranges need not end on a page boundary.)
func (m *elfMemory) State(pfn uint64) PageState {
	if pfn > ^uint64(0)/m.pageSize {
		return PageNotRAM
	}
	start := pfn * m.pageSize
	end := start + m.pageSize
	if end < start {
		end = ^uint64(0)
	}
	st := PageNotRAM
	for i := m.find(start); i < len(m.spans) && m.spans[i].start < end; i++ {
		switch s := m.spans[i].state; {
		case s == PageMissing:
			return PageMissing
		case s == PageExcluded:
			st = PageExcluded
		case st == PageNotRAM:
			st = s
		}
	}
	return st
}

func (m *elfMemory) PageSize() int   { return int(m.pageSize) }
func (m *elfMemory) Ranges() []Range { return append([]Range(nil), m.ram...) }
