package collect

import (
	"debug/elf"
	"fmt"

	"salvage/arch/amd64"
	"salvage/dump"
)

// elfSink feeds an ELF writer: it stores pages back to back.
type elfSink struct{ *dump.ELFWriter }

func (s elfSink) WritePage(_ uint64, p dump.EncodedPage) error {
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
// left out rather than shared.
func newELFSink(src *dump.File, sel *Selection, out destination) (pageSink, itemSource, uint64, error) {
	segs, err := sourceSegments(src)
	if err != nil {
		return nil, nil, 0, err
	}
	ps := uint64(sel.PageSize)
	dumpable := sel.Kept.Clone()
	if sel.Plan.Level&LevelZero != 0 {
		page := make([]byte, ps)
		for pfn := dumpable.Next(0); pfn < sel.MaxPFN; pfn = dumpable.Next(pfn + 1) {
			if _, err := src.Memory.ReadPhys(page, pfn*ps); err != nil {
				return nil, nil, 0, fmt.Errorf("reading the page of frame %#x: %w", pfn, err)
			}
			if isZero(page) {
				dumpable.Remove(pfn)
				sel.Counts.Zero++
			}
		}
	}
	sel.Counts.Kept = dumpable.Count()
	loads := dump.PlanELFLoads(segs, dumpable, int(ps))
	_, streamed := out.(*dump.FlattenedWriter)
	ew, err := dump.NewELFWriter(out, src.Arch, src.Notes, loads, streamed)
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
				if !yield(item{pfn: pfn, addr: a, n: int(n), keep: n == ps && dumpable.Has(pfn)}) {
					return
				}
				a += n
			}
		}
	}
	return elfSink{ew}, items, total, nil
}
