package dump

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ELFSegment is one PT_LOAD of a source dump: physical memory
// [Paddr, Paddr+Memsz) mapped at Vaddr.
type ELFSegment struct {
	Paddr, Vaddr, Memsz uint64
}

// ELFLoad is one PT_LOAD of a filtered ELF dump: Memsz bytes of physical
// memory at Paddr, of which the first Filesz are in the file.
type ELFLoad struct {
	Paddr, Vaddr, Memsz, Filesz uint64
	Offset                      uint64 // p_offset, set by NewELFWriter
}

// FrameSet says which page frames are in a set.
type FrameSet interface {
	Has(pfn uint64) bool
}

// elfExcludeRun is makedumpfile's PFN_EXCLUDED (makedumpfile.h): a run of
// fewer excluded frames than this is written anyway, so that a dump does
// not fragment into thousands of PT_LOADs.
const elfExcludeRun = 256

// PlanELFLoads cuts the source's segments into the PT_LOADs of a
// filtered ELF dump, as makedumpfile -E does (makedumpfile.c
// write_elf_pages_cyclic): walking each segment's frames, a run of at
// least 256 frames not in dumpable ends a PT_LOAD (the run stays in its
// p_memsz, beyond p_filesz) and the next dumpable frame starts a new one;
// shorter runs are written with their data. A partial first page is
// always written, a partial last page only when dumpable.
//
// dumpable is asked about the frames of each segment in increasing order
// (a *PFNSet will do; a collector may classify lazily, window by window).
func PlanELFLoads(segs []ELFSegment, dumpable FrameSet, pageSize int) []ELFLoad {
	ps := uint64(pageSize)
	var loads []ELFLoad
	for _, s := range segs {
		pfnStart, pfnEnd := s.Paddr/ps, (s.Paddr+s.Memsz)/ps
		fracHead := ps - s.Paddr%ps
		fracTail := (s.Paddr + s.Memsz) % ps
		cur := ELFLoad{Paddr: s.Paddr, Vaddr: s.Vaddr}
		if fracHead != ps {
			cur.Memsz, cur.Filesz = fracHead, fracHead
			pfnStart++
		}
		if fracTail != 0 {
			pfnEnd++
		}
		var excluded uint64
		for pfn := pfnStart; pfn < pfnEnd; pfn++ {
			size := ps
			if pfn == pfnEnd-1 && fracTail != 0 {
				size = fracTail
			}
			if !dumpable.Has(pfn) {
				excluded++
				cur.Memsz += size
				continue
			}
			if excluded < elfExcludeRun {
				cur.Memsz += size
				cur.Filesz += excluded*ps + size
				excluded = 0
				continue
			}
			// The run before pfn is excluded for real: close the
			// PT_LOAD, start the next at pfn.
			loads = append(loads, cur)
			next := ELFLoad{Paddr: cur.Paddr + cur.Memsz, Vaddr: cur.Vaddr + cur.Memsz, Memsz: size, Filesz: size}
			cur = next
			excluded = 0
		}
		loads = append(loads, cur)
	}
	return loads
}

// ELFWriter writes a filtered ELF64 core: the ELF header, PT_NOTE then
// the PT_LOADs, the notes, and the segments' data in PT_LOAD order (the
// layout of makedumpfile -E). e_flags carries makedumpfile's
// DUMP_ELF_INCOMPLETE until Close, so a cut dump says so.
type ELFWriter struct {
	w        io.WriterAt
	ehdr     []byte
	off      int64 // where the next data goes
	end      int64 // where the data ends
	buf      []byte
	streamed bool
	err      error
}

// NewELFWriter writes the headers and notes. The loads' offsets are
// filled in; their data is then given to Write in order, Filesz bytes
// per load. streamed says w is a flattened stream (-E -F), read by the
// first record of each region: the header is then written final at once,
// and Abort appends one marked incomplete (see KdumpHeader.Streamed).
// noteAlign is the PT_NOTE's p_align: the source's, as makedumpfile -E
// keeps it.
func NewELFWriter(w io.WriterAt, arch Arch, notes []Note, noteAlign uint64, loads []ELFLoad, streamed bool) (*ELFWriter, error) {
	var machine uint16
	switch arch {
	case ArchX86_64:
		machine = emX86_64
	case ArchARM64:
		machine = emAArch64
	default:
		return nil, fmt.Errorf("ELF writer: unknown architecture %q", arch)
	}
	phnum := 1 + len(loads)
	if phnum >= 0xffff {
		return nil, fmt.Errorf("ELF writer: %d program headers do not fit e_phnum (PN_XNUM is not written)", phnum)
	}
	le := binary.LittleEndian
	nb := noteBytes(notes)
	noteOff := int64(ehdrSize + phdrSize*phnum)
	dataOff := noteOff + int64(len(nb))

	head := make([]byte, dataOff)
	copy(head, "\x7fELF")
	head[4], head[5], head[6] = elfClass64, elfData2LSB, 1
	le.PutUint16(head[16:], etCore)
	le.PutUint16(head[18:], machine)
	le.PutUint32(head[20:], 1)
	le.PutUint64(head[32:], ehdrSize)
	if !streamed {
		le.PutUint32(head[48:], dumpELFIncomplete)
	}
	le.PutUint16(head[52:], ehdrSize)
	le.PutUint16(head[54:], phdrSize)
	le.PutUint16(head[56:], uint16(phnum))
	phdr := func(i int, typ uint32, off, vaddr, paddr, filesz, memsz, align uint64, flags uint32) {
		b := head[ehdrSize+phdrSize*i:]
		le.PutUint32(b[0:], typ)
		le.PutUint32(b[4:], flags)
		le.PutUint64(b[8:], off)
		le.PutUint64(b[16:], vaddr)
		le.PutUint64(b[24:], paddr)
		le.PutUint64(b[32:], filesz)
		le.PutUint64(b[40:], memsz)
		le.PutUint64(b[48:], align)
	}
	phdr(0, ptNote, uint64(noteOff), 0, 0, uint64(len(nb)), uint64(len(nb)), noteAlign, 0)
	off := uint64(dataOff)
	for i := range loads {
		l := &loads[i]
		l.Offset = 0 // a PT_LOAD without data has offset 0, as makedumpfile writes it
		if l.Filesz > 0 {
			l.Offset = off
		}
		phdr(1+i, ptLoad, l.Offset, l.Vaddr, l.Paddr, l.Filesz, l.Memsz, 0, 7) // PF_R|PF_W|PF_X
		off += l.Filesz
	}
	copy(head[noteOff:], nb)
	e := &ELFWriter{w: w, ehdr: head[:ehdrSize:ehdrSize], off: dataOff, end: int64(off), streamed: streamed}
	if _, err := w.WriteAt(head, 0); err != nil {
		return nil, fmt.Errorf("writing the ELF headers: %w", err)
	}
	return e, nil
}

// noteBytes lays notes out as in a PT_NOTE: Elf64_Nhdr, name, descriptor,
// each padded to 4 bytes. It also reports where the VMCOREINFO
// descriptor lands.
func noteBytes(notes []Note) []byte {
	b, _, _ := noteBytesVMCoreInfo(notes)
	return b
}

func noteBytesVMCoreInfo(notes []Note) (out []byte, viOff, viSize int) {
	le := binary.LittleEndian
	for _, n := range notes {
		name := n.Name + "\x00"
		var nh [12]byte
		le.PutUint32(nh[0:], uint32(len(name)))
		le.PutUint32(nh[4:], uint32(len(n.Desc)))
		le.PutUint32(nh[8:], n.Type)
		out = append(out, nh[:]...)
		out = append(out, name...)
		out = append(out, make([]byte, align4(uint64(len(name)))-uint64(len(name)))...)
		if n.Name == "VMCOREINFO" {
			viOff, viSize = len(out), len(n.Desc)
		}
		out = append(out, n.Desc...)
		out = append(out, make([]byte, align4(uint64(len(n.Desc)))-uint64(len(n.Desc)))...)
	}
	return out, viOff, viSize
}

// Write appends segment data.
func (e *ELFWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.off+int64(len(e.buf))+int64(len(p)) > e.end {
		return 0, fmt.Errorf("ELF writer: %d bytes more than the PT_LOADs hold", e.off+int64(len(e.buf))+int64(len(p))-e.end)
	}
	e.buf = append(e.buf, p...)
	if len(e.buf) >= kdumpFlushSize {
		e.flush()
	}
	return len(p), e.err
}

func (e *ELFWriter) flush() {
	if e.err != nil || len(e.buf) == 0 {
		return
	}
	if _, err := e.w.WriteAt(e.buf, e.off); err != nil {
		e.err = fmt.Errorf("writing %d bytes at offset %#x: %w", len(e.buf), e.off, err)
		return
	}
	e.off += int64(len(e.buf))
	e.buf = e.buf[:0]
}

// Close writes what is buffered and, when every PT_LOAD's data was
// written, clears DUMP_ELF_INCOMPLETE.
func (e *ELFWriter) Close() error {
	e.flush()
	if e.err != nil {
		return e.err
	}
	if e.off != e.end {
		return fmt.Errorf("ELF writer: closed %d bytes short of the PT_LOADs' data; the dump stays marked incomplete", e.end-e.off)
	}
	if !e.streamed {
		binary.LittleEndian.PutUint32(e.ehdr[48:], 0)
		e.writeHeader()
	}
	return e.err
}

func (e *ELFWriter) writeHeader() {
	if _, err := e.w.WriteAt(e.ehdr, 0); err != nil && e.err == nil {
		e.err = fmt.Errorf("rewriting the ELF header: %w", err)
	}
}

// Abort writes what is buffered and leaves the dump marked incomplete.
func (e *ELFWriter) Abort() error {
	e.flush()
	if e.streamed && e.err == nil {
		binary.LittleEndian.PutUint32(e.ehdr[48:], dumpELFIncomplete)
		e.writeHeader()
	}
	return e.err
}

// Size is the length of the file written so far, buffered data included.
func (e *ELFWriter) Size() int64 { return e.off + int64(len(e.buf)) }
