package collect

import (
	"fmt"
	"math/bits"
	"sort"

	"salvage/dump"
)

// Selection is the outcome of classification: which frames are RAM,
// which of them the dump keeps, and how many of each class were excluded.
// A Selection made by Select holds the bitmaps of the whole machine; one
// made by Survey holds none (RAM and Kept are nil) and its windows are
// classified again, one at a time, when the pages are written.
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

	mem    dump.Memory
	ranges []dump.Range // RAM, in page frames
	sm     *sparseMem   // nil when no struct page is read
	rd     virtReader
	// filter drops frames the source does not hold (a filtered dump).
	filter bool
	// needs are frames kept whatever the level (see needs.go); nil when
	// the kernel could not be modelled or the level excludes nothing.
	needs *needs
	// times are prepare's phases.
	times Times
	// cache holds a survey's windows when they are few enough
	// (windowCacheBytes): Windows then gives them rather than classify
	// the struct pages again.
	cache []cachedWindow
	// sourceName names the source in errors; sourceEnd is set when it is
	// an ELF file shorter than its program headers say.
	sourceName string
	sourceEnd  *SourceEnd
}

// frameRanges turns the source's RAM ranges into frame ranges. As in
// makedumpfile's default (cyclic, in-memory bitmap) mode, a range covers
// the frames from the one its start is in up to, not including, the one
// its end is in (create_bitmap_from_memhole: paddr_to_pfn of both ends), so
// a partial last page — 0x9f000–0x9fc00 below 640 KiB on a PC — is not
// dumped; max_mapnr still counts it (get_max_mapnr rounds up).
func frameRanges(mem dump.Memory) (rs []dump.Range, maxPFN uint64, shift uint) {
	ps := uint64(mem.PageSize())
	shift = uint(bits.TrailingZeros64(ps))
	for _, r := range mem.Ranges() {
		maxPFN = max(maxPFN, (r.End+ps-1)>>shift)
		if s, e := r.Start>>shift, r.End>>shift; s < e {
			rs = append(rs, dump.Range{Start: s, End: e})
		}
	}
	return rs, maxPFN, shift
}

// memMapChunk is how many struct pages are read at once: 512 (makedumpfile's
// PGMM_CACHED), so a chunk is 32 KiB.
const memMapChunk = 512

// windowFrames is how many frames one window of a survey covers: 2^21
// (8 GiB of 4 KiB pages), so that a window's two bitmaps take 512 KiB
// whatever the size of the machine. It must be a multiple of 8 (bitmap
// bytes); tests make it small to cut the lab's 1 GiB machine in many.
var windowFrames uint64 = 1 << 21

// plan reads the geometry and decides the level, without classifying.
func plan(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int) (*Selection, error) {
	if level < 0 || level > LevelMax {
		return nil, fmt.Errorf("dump level %d: must be 0–31", level)
	}
	rs, maxPFN, shift := frameRanges(mem)
	sel := &Selection{PageSize: mem.PageSize(), MaxPFN: maxPFN, Plan: planLevel(vi, level), mem: mem, ranges: rs, rd: rd}
	for _, r := range rs {
		sel.Counts.RAM += r.End - r.Start
	}
	// Without a reader of kernel memory no struct page can be read: the
	// pages are kept (the caller says why).
	if sel.Plan.Level&^LevelZero != 0 && rd != nil {
		sm, err := readSparseMem(vi, rd, shift, maxPFN)
		if err != nil {
			// Nothing above zero pages can be excluded without mem_map.
			sel.Plan.Notes = append(sel.Plan.Notes, fmt.Sprintf("dump level %d dropped: %v", sel.Plan.Level&^LevelZero, err))
			sel.Plan.Level &= LevelZero
		} else {
			sel.sm = sm
		}
	}
	return sel, nil
}

// Select classifies every RAM frame of mem at the given dump level and
// keeps both bitmaps of the whole machine. rd reads kernel virtual memory
// (the mem_map lives in vmemmap); when it is nil nothing is excluded but
// by the caller's zero-page test, and the plan's Level still shows the
// bits asked for: the caller drops them.
func Select(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int) (*Selection, error) {
	return selectAll(mem, vi, rd, level, false, nil)
}

// selectAll is Select; filter drops the frames mem does not hold, and
// need's frames are kept whatever their class.
func selectAll(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int, filter bool, need *needs) (*Selection, error) {
	sel, err := plan(mem, vi, rd, level)
	if err != nil {
		return nil, err
	}
	sel.filter, sel.needs = filter, need
	w := sel.newWalker(&sel.Counts, &sel.Warnings)
	sel.RAM, sel.Kept = w.window(0, sel.MaxPFN)
	sel.Counts.Kept = sel.Kept.Count()
	return sel, nil
}

// Survey classifies every RAM frame window by window, counting but
// keeping no bitmap: the memory it takes does not grow with the machine.
// Windows then gives the bitmaps again, window by window.
func Survey(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int, filter bool) (*Selection, error) {
	return survey1(mem, vi, rd, level, filter, nil)
}

// survey1 is Survey keeping need's frames whatever their class.
func survey1(mem dump.Memory, vi *dump.VMCoreInfo, rd virtReader, level int, filter bool, need *needs) (*Selection, error) {
	sel, err := plan(mem, vi, rd, level)
	if err != nil {
		return nil, err
	}
	sel.filter, sel.needs = filter, need
	// The windows' bitmaps are kept while they fit in windowCacheBytes
	// (a machine of up to 128 GiB): the writers then read them again
	// rather than classify every struct page twice more (the bitmaps
	// for the header, then the pages).
	caching, size := true, 0
	var cache []cachedWindow
	for base, w := range sel.Windows(&sel.Counts, &sel.Warnings) {
		ram, kept := w()
		sel.Counts.Kept += kept.Count()
		if size += 2 * int((kept.Len()+7)/8); caching && size <= windowCacheBytes {
			cache = append(cache, cachedWindow{base, ram, kept})
		} else {
			caching, cache = false, nil
		}
	}
	if caching {
		sel.cache = cache
	}
	return sel, nil
}

// windowCacheBytes bounds the bitmaps a survey keeps (two bits a frame:
// 8 MiB for 128 GiB of 4 KiB pages). Tests set it to 0 to make the
// writers classify each window again.
var windowCacheBytes = 8 << 20

// cachedWindow is one window's bitmaps, as the survey classified it.
type cachedWindow struct {
	base      uint64
	ram, kept *dump.PFNSet
}

// Windows iterates over the windows of the machine in PFN order: for
// each, its first frame and a function that classifies it and returns its
// RAM and kept bitmaps (bit i standing for frame base+i). The windows must
// be classified in order: an exclusion that runs past a window's end (a
// gigantic page) carries into the next. counts and warnings receive what
// classification finds.
func (sel *Selection) Windows(counts *Counts, warnings *[]string) func(yield func(uint64, func() (ram, kept *dump.PFNSet)) bool) {
	return func(yield func(uint64, func() (ram, kept *dump.PFNSet)) bool) {
		if sel.cache != nil {
			// The survey's bitmaps, as they are: callers only read them.
			for _, c := range sel.cache {
				if !yield(c.base, func() (*dump.PFNSet, *dump.PFNSet) { return c.ram, c.kept }) {
					return
				}
			}
			return
		}
		w := sel.newWalker(counts, warnings)
		for base := uint64(0); base < sel.MaxPFN; base += windowFrames {
			end := min(base+windowFrames, sel.MaxPFN)
			if !yield(base, func() (*dump.PFNSet, *dump.PFNSet) { return w.window(base, end) }) {
				return
			}
		}
	}
}

// walker classifies windows in order, carrying an exclusion across them.
type walker struct {
	sel      *Selection
	counts   *Counts
	warnings *[]string
	buf      []byte
	// pendingEnd carries an exclusion across chunk, section and window
	// ends: frames below it are excluded as pendingClass.
	pendingEnd   uint64
	pendingClass Class
	// needAt is where the last needed() stopped in sel.needs.pfns.
	needAt int
}

// needed is sel.needs.has(p) for frames asked in increasing order (as
// a walk asks them), each in amortized constant time.
func (w *walker) needed(p uint64) bool {
	n := w.sel.needs
	if n == nil {
		return false
	}
	pf := n.pfns
	if w.needAt > 0 && pf[w.needAt-1] >= p {
		w.needAt = sort.Search(len(pf), func(i int) bool { return pf[i] >= p })
	}
	for w.needAt < len(pf) && pf[w.needAt] < p {
		w.needAt++
	}
	return w.needAt < len(pf) && pf[w.needAt] == p
}

func (sel *Selection) newWalker(counts *Counts, warnings *[]string) *walker {
	w := &walker{sel: sel, counts: counts, warnings: warnings}
	if sel.sm != nil {
		w.buf = make([]byte, (memMapChunk+1)*sel.Plan.layout.size)
	}
	return w
}

// window classifies frames [base, end) and returns their bitmaps, indexed
// from base.
func (w *walker) window(base, end uint64) (ram, kept *dump.PFNSet) {
	sel := w.sel
	ram = dump.NewPFNSet(end - base)
	for _, r := range sel.ranges {
		if s, e := max(r.Start, base), min(r.End, end); s < e {
			ram.AddRange(s-base, e-base)
		}
	}
	kept = ram.Clone()
	if sel.sm != nil {
		w.walk(base, end, ram, kept)
	}

	if sel.filter {
		// A filtered source does not hold every RAM page: what it
		// excluded cannot be dumped again. A page it should hold but
		// lacks (a truncated or incomplete source) stays kept, to be
		// marked missing in the dump written (see runPipeline).
		for i := kept.Next(0); i < kept.Len(); i = kept.Next(i + 1) {
			if st := sel.mem.State(base + i); st != dump.PagePresent && st != dump.PageZero && st != dump.PageMissing {
				kept.Remove(i)
			}
		}
	}
	return ram, kept
}

// walk runs classifyOne over the struct pages of frames [base, end).
func (w *walker) walk(base, end uint64, ram, kept *dump.PFNSet) {
	sel, sm := w.sel, w.sel.sm
	l := &sel.Plan.layout
	psz := l.size
	exclude := func(start, stop uint64, cl Class) {
		stop = min(stop, end)
		var n uint64
		for p := max(start, base); p < stop; p++ {
			if w.needed(p) {
				// The analyzer needs it, whatever its class.
				if kept.Has(p - base) {
					w.counts.KeptForAnalyzer++
				}
				continue
			}
			if kept.Remove(p - base) {
				n++
			}
		}
		w.counts.add(cl, n)
	}
	for sec := base / sm.pagesPerSect; sec*sm.pagesPerSect < end && sec < uint64(len(sm.memMaps)); sec++ {
		mm := sm.memMaps[sec]
		first := sec * sm.pagesPerSect
		last := min(first+sm.pagesPerSect, end)
		for c := max(first, base); c < last; c += memMapChunk {
			cend := min(c+memMapChunk, last)
			if w.pendingEnd > c {
				exclude(c, min(w.pendingEnd, cend), w.pendingClass)
				if w.pendingEnd >= cend {
					continue
				}
			}
			if mm == 0 {
				continue
			}
			// One struct page beyond the chunk, when the section has it,
			// so that a head's first tail page is at hand.
			n := cend - c
			if cend < first+sm.pagesPerSect && cend < sel.MaxPFN {
				n++
			}
			chunk := w.buf[:n*psz]
			if _, err := w.sel.rd.ReadVirt(chunk, mm+(c-first)*psz); err != nil {
				*w.warnings = append(*w.warnings, fmt.Sprintf("struct pages of frames %#x–%#x unreadable, kept: %v", c, cend-1, err))
				continue
			}
			for pfn := max(c, w.pendingEnd); pfn < cend; pfn++ {
				if !ram.Has(pfn - base) {
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
				stop := min(pfn+cnt, sel.MaxPFN)
				exclude(pfn, min(stop, cend), cl)
				if stop > cend {
					w.pendingEnd, w.pendingClass = stop, cl
				}
				pfn = stop - 1
			}
		}
	}
}
