package collect

import (
	"fmt"
	"math/bits"

	"salvage/dump"
)

// Selection is the outcome of classification: which frames are RAM,
// which of them the dump keeps, and how many of each class were excluded.
type Selection struct {
	Plan     *Plan
	PageSize int
	MaxPFN   uint64       // max_mapnr: one past the last RAM frame
	RAM      *dump.PFNSet // frames that are RAM (the kdump 1st bitmap)
	Kept     *dump.PFNSet // frames kept (the kdump 2nd bitmap, before zero pages)
	Counts   Counts
	// Warnings are the problems classification worked around by keeping
	// pages (a mem_map that could not be read, for instance).
	Warnings []string
}

// ramSet makes the 1st bitmap from the source's RAM ranges. As in
// makedumpfile's default (cyclic, in-memory bitmap) mode, a range covers
// the frames from the one its start is in up to, not including, the one
// its end is in (create_bitmap_from_memhole: paddr_to_pfn of both ends), so
// a partial last page — 0x9f000–0x9fc00 below 640 KiB on a PC — is not
// dumped; max_mapnr still counts it (get_max_mapnr rounds up).
func ramSet(mem dump.Memory) (*dump.PFNSet, uint64, uint) {
	ps := uint64(mem.PageSize())
	shift := uint(bits.TrailingZeros64(ps))
	var maxPFN uint64
	rs := mem.Ranges()
	for _, r := range rs {
		maxPFN = max(maxPFN, (r.End+ps-1)>>shift)
	}
	set := dump.NewPFNSet(maxPFN)
	for _, r := range rs {
		set.AddRange(r.Start>>shift, r.End>>shift)
	}
	return set, maxPFN, shift
}

// memMapChunk is how many struct pages are read at once: 512 (makedumpfile's
// PGMM_CACHED), so a chunk is 32 KiB and memory stays bounded.
const memMapChunk = 512

// Select classifies every RAM frame of mem at the given dump level.
// rd reads kernel virtual memory (the mem_map lives in vmemmap); when it
// is nil nothing is excluded but by the caller's zero-page test, and the
// plan's Level still shows the bits asked for: the caller drops them.
func Select(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int) (*Selection, error) {
	if level < 0 || level > LevelMax {
		return nil, fmt.Errorf("dump level %d: must be 0–31", level)
	}
	ram, maxPFN, shift := ramSet(mem)
	sel := &Selection{PageSize: mem.PageSize(), MaxPFN: maxPFN, RAM: ram, Plan: planLevel(vi, level)}
	sel.Kept = ram.Clone()
	sel.Counts.RAM = ram.Count()
	// Without a reader of kernel memory no struct page can be read: the
	// pages are kept (the caller says why).
	if sel.Plan.Level&^LevelZero != 0 && rd != nil {
		sm, err := readSparseMem(vi, rd, shift, maxPFN)
		if err != nil {
			// Nothing above zero pages can be excluded without mem_map.
			sel.Plan.Notes = append(sel.Plan.Notes, fmt.Sprintf("dump level %d dropped: %v", sel.Plan.Level&^LevelZero, err))
			sel.Plan.Level &= LevelZero
		} else {
			sel.walk(sm, rd)
		}
	}
	sel.Counts.Kept = sel.Kept.Count()
	return sel, nil
}

// walk runs classifyOne over every section's struct pages.
func (sel *Selection) walk(sm *sparseMem, rd virtReader) {
	l := &sel.Plan.layout
	psz := l.size
	buf := make([]byte, (memMapChunk+1)*psz)
	// pendingEnd carries an exclusion across chunk and section ends.
	var pendingEnd uint64
	var pendingClass Class
	exclude := func(start, end uint64, cl Class) {
		end = min(end, sel.MaxPFN)
		var n uint64
		for p := start; p < end; p++ {
			if sel.Kept.Remove(p) {
				n++
			}
		}
		sel.Counts.add(cl, n)
	}
	for sec, mm := range sm.memMaps {
		first := uint64(sec) * sm.pagesPerSect
		last := min(first+sm.pagesPerSect, sel.MaxPFN)
		if mm == 0 {
			continue
		}
		for c := first; c < last; c += memMapChunk {
			cend := min(c+memMapChunk, last)
			if pendingEnd > c {
				exclude(c, min(pendingEnd, cend), pendingClass)
				if pendingEnd >= cend {
					continue
				}
			}
			// One struct page beyond the chunk, when the section has it,
			// so that a head's first tail page is at hand.
			n := cend - c
			if cend < last {
				n++
			}
			chunk := buf[:n*psz]
			if _, err := rd.ReadVirt(chunk, mm+(c-first)*psz); err != nil {
				sel.Warnings = append(sel.Warnings, fmt.Sprintf("struct pages of frames %#x–%#x unreadable, kept: %v", c, cend-1, err))
				continue
			}
			for pfn := max(c, pendingEnd); pfn < cend; pfn++ {
				if !sel.RAM.Has(pfn) {
					continue
				}
				i := pfn - c
				s := l.read(chunk[i*psz : (i+1)*psz])
				var next []byte
				if (i+2)*psz <= uint64(len(chunk)) {
					next = chunk[(i+1)*psz : (i+2)*psz]
				}
				cl, cnt := sel.Plan.classifyOne(pfn, s, next)
				if cl == ClassKept || cnt == 0 {
					continue
				}
				end := pfn + cnt
				exclude(pfn, min(end, cend), cl)
				if end > cend {
					pendingEnd, pendingClass = end, cl
				}
				pfn = end - 1
			}
		}
	}
}
