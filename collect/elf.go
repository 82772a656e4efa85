package collect

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"

	"salvage/arch/amd64"
	"salvage/dump"
)

// elfSink feeds an ELF writer: it stores pages back to back.
type elfSink struct{ *dump.ELFWriter }

func (s elfSink) WritePage(_ item, p dump.EncodedPage) error {
	_, err := s.Write(p.Data)
	return err
}

// sourceSegments returns the PT_LOADs of src: its own when it is an ELF
// core (so that the kernel-text segment is kept beside the direct map, as
// makedumpfile -E keeps it), otherwise one per RAM range, mapped at the
// direct map.
func sourceSegments(src *dump.File) ([]dump.ELFSegment, error) {
	if src.Format == dump.FormatELF {
		ef, err := elf.Open(src.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: program headers: %w", src.Path, err)
		}
		defer ef.Close()
		var segs []dump.ELFSegment
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && p.Memsz > 0 {
				segs = append(segs, dump.ELFSegment{Paddr: p.Paddr, Vaddr: p.Vaddr, Memsz: p.Memsz})
			}
		}
		return segs, nil
	}
	var toVirt func(uint64) uint64
	if src.Arch == dump.ArchX86_64 {
		if tr, err := amd64.NewFromFile(src, nil); err == nil {
			toVirt = tr.PhysToVirt
		}
	}
	var segs []dump.ELFSegment
	for _, r := range src.Memory.Ranges() {
		s := dump.ELFSegment{Paddr: r.Start, Memsz: r.End - r.Start}
		if toVirt != nil {
			s.Vaddr = toVirt(r.Start)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// newELFSink plans the PT_LOADs of an ELF dump of sel and writes its
// headers. As makedumpfile -E does (exclude_zero_pages_cyclic), zero pages
// are found first, by reading every kept page, because in ELF they are
// left out rather than shared. A survey's windows are classified again as
// the planner walks each segment, so no bitmap of the machine is held.
func newELFSink(src *dump.File, sel *Selection, out destination) (pageSink, itemSource, uint64, error) {
	segs, err := sourceSegments(src)
	if err != nil {
		return nil, nil, 0, err
	}
	ps := uint64(sel.PageSize)
	d := &elfDumpable{sel: sel, mem: src.Memory, zeroes: sel.Plan.Level&LevelZero != 0, counted: map[uint64]bool{}}
	loads := dump.PlanELFLoads(segs, d, int(ps))
	if d.err != nil {
		return nil, nil, 0, d.err
	}
	sel.Counts.Zero = d.zero
	sel.Counts.Kept -= d.zero
	_, streamed := out.(*dump.FlattenedWriter)
	ew, err := dump.NewELFWriter(out, src.Arch, src.Notes, src.NoteAlign, loads, streamed)
	if err != nil {
		return nil, nil, 0, err
	}
	var total uint64
	for _, l := range loads {
		total += (l.Paddr%ps + l.Filesz + ps - 1) / ps
	}
	items := func(yield func(item) bool) {
		for _, l := range loads {
			for a, end := l.Paddr, l.Paddr+l.Filesz; a < end; {
				n := min(ps-a%ps, end-a)
				pfn := a / ps
				// A page the source holds must read; one it excluded (a
				// short excluded run of a filtered source) is zeroes; one
				// it should hold but lacks (a truncated source) stops the
				// dump with a SourceError.
				st := src.Memory.State(pfn)
				keep := n == ps && (st == dump.PagePresent || st == dump.PageMissing)
				if !yield(item{pfn: pfn, addr: a, n: int(n), keep: keep}) {
					return
				}
				a += n
			}
		}
	}
	return elfSink{ew}, items, total, nil
}

// elfDumpable answers the ELF planner's questions — is this frame kept,
// and not a zero page? — classifying the window a frame is in when the
// planner reaches it. A survey's selection holds no bitmap; a Select's
// does, and is used as it is.
type elfDumpable struct {
	sel     *Selection
	mem     dump.Memory
	zeroes  bool
	w       *walker
	next    uint64 // the window w classifies next
	base    uint64
	set     *dump.PFNSet // the current window's dumpable frames, from base
	counted map[uint64]bool
	zero    uint64 // zero pages found, each window counted once
	err     error
}

func (d *elfDumpable) Has(pfn uint64) bool {
	if pfn >= d.sel.MaxPFN || d.err != nil {
		return false
	}
	if d.set == nil || pfn < d.base || pfn >= d.base+d.set.Len() {
		d.load(pfn / windowFrames * windowFrames)
		if d.err != nil {
			return false
		}
	}
	return d.set.Has(pfn - d.base)
}

// load classifies the window at base. Windows are visited in increasing
// order within a segment; a segment that starts below the last window
// (the kernel image's, which /proc/vmcore lists first) starts a new walk.
func (d *elfDumpable) load(base uint64) {
	sel := d.sel
	end := min(base+windowFrames, sel.MaxPFN)
	var kept *dump.PFNSet
	var cached *cachedWindow
	for i := range sel.cache {
		if sel.cache[i].base == base {
			cached = &sel.cache[i]
		}
	}
	if cached != nil {
		// A copy: zero pages are taken out of it below.
		kept = cached.kept.Clone()
	} else if sel.Kept != nil {
		kept = dump.NewPFNSet(end - base)
		for p := sel.Kept.Next(base); p < end; p = sel.Kept.Next(p + 1) {
			kept.Add(p - base)
		}
	} else {
		if d.w == nil || base < d.base {
			// A walk starts at frame 0: an exclusion can run from one
			// window into the next (a buddy block or folio across the
			// boundary), so a window is only right after those before it.
			var scratch Counts
			var warnings []string
			d.w = sel.newWalker(&scratch, &warnings)
			d.next = 0
		}
		for ; d.next < base; d.next += windowFrames {
			d.w.window(d.next, min(d.next+windowFrames, sel.MaxPFN))
		}
		_, kept = d.w.window(base, end)
		d.next = base + windowFrames
	}
	d.base, d.set = base, kept
	if !d.zeroes {
		return
	}
	ps := uint64(sel.PageSize)
	page := make([]byte, ps)
	first := !d.counted[base]
	d.counted[base] = true
	for i := kept.Next(0); i < kept.Len(); i = kept.Next(i + 1) {
		if _, err := d.mem.ReadPhys(page, (base+i)*ps); err != nil {
			var pe *dump.PageError
			if errors.As(err, &pe) && pe.State == dump.PageMissing {
				// Kept: the pipeline stops there with a SourceError.
				continue
			}
			d.err = fmt.Errorf("reading the page of frame %#x: %w", base+i, err)
			return
		}
		if isZero(page) {
			kept.Remove(i)
			if first {
				d.zero++
			}
		}
	}
}

// elfSourceEnd reports, for an ELF source shorter than its PT_LOADs say
// (a copy of /proc/vmcore cut short), where the file ends and where the
// program headers reach; nil otherwise.
func elfSourceEnd(src *dump.File) *SourceEnd {
	if src.Format != dump.FormatELF || src.Path == "" {
		return nil
	}
	ef, err := elf.Open(src.Path)
	if err != nil {
		return nil
	}
	defer ef.Close()
	var want int64
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			want = max(want, int64(p.Off+p.Filesz))
		}
	}
	st, err := os.Stat(src.Path)
	if err != nil || st.Size() >= want {
		return nil
	}
	return &SourceEnd{Size: st.Size(), Want: want}
}
