package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"salvage/dump"
)

// CollectSplit writes the dump as len(dests) kdump-compressed files, the
// parts of a split dump as makedumpfile --split writes them (write_kdump
// of each splitting_info; makedumpfile.c): every part has the same
// headers, notes and both bitmaps of the whole machine, the split flag and
// its PFN range in the sub-header, a descriptor table as long as the
// whole dump's that starts with its own range's pages, and the pages of
// its range only. Parts hold as near the same number of pages as PFN order
// allows (makedumpfile divides by dumpable pages too), so they fill
// several disks evenly. Each part goes through DEST.incomplete, as
// Collect's file does, and the parts are renamed together at the end; on
// an error every part stays at its .incomplete name, marked incomplete.
func CollectSplit(ctx context.Context, src *dump.File, dests []string, opt Options) (*Result, error) {
	if opt.Compression == "" {
		opt.Compression = "none"
	}
	if opt.Format == "" {
		opt.Format = FormatKdump
	}
	switch {
	case len(dests) < 2:
		return nil, fmt.Errorf("a split dump needs at least 2 files, not %d", len(dests))
	case opt.Format != FormatKdump:
		return nil, errors.New("a split dump is kdump-compressed: drop -E")
	case len(opt.RetryLevels) > 0:
		return nil, errors.New("--retry-levels does not apply to a split dump")
	}
	seen := map[string]bool{}
	for _, d := range dests {
		if seen[d] {
			return nil, fmt.Errorf("%s is given twice for one split dump", d)
		}
		seen[d] = true
		if !opt.Force {
			if _, err := os.Lstat(d); err == nil {
				return nil, fmt.Errorf("%s exists: remove it or give --force", d)
			}
		}
	}
	sel, err := prepare(src, opt.Level, true, opt.Exact)
	if err != nil {
		return nil, err
	}
	h, err := header(src, sel.Plan.Level)
	if err != nil {
		return nil, err
	}
	cuts, starts := splitCuts(sel, len(dests))

	res := &Result{Selection: sel, Dest: strings.Join(tmpNames(dests), " "), LevelsTried: []int{sel.Plan.Level}}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	sink := &splitSink{cuts: cuts}
	for i, d := range dests {
		f, err := os.OpenFile(d+".incomplete", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
		var dst destination = f
		if opt.Limit > 0 {
			dst = limitedFile{f, opt.Limit}
		}
		ph := h
		ph.Split = true
		ph.StartPFN = starts[i]
		ph.EndPFN = sel.MaxPFN
		if i+1 < len(dests) {
			ph.EndPFN = starts[i+1]
		}
		kw, err := dump.NewKdumpWriterWindowed(dst, ph, opt.Compression, sel.MaxPFN)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		sink.parts = append(sink.parts, kw)
		sink.names = append(sink.names, f.Name())
	}
	werr := sink.start(sel)
	if werr == nil {
		werr = runPipeline(ctx, src.Memory, sel, sel.keptPages(true), sel.Counts.Kept, opt.Compression, sink, opt, res)
		if werr != nil {
			sink.Abort()
		} else {
			werr = sink.Close()
		}
	}
	res.Written = sink.Size()
	res.Counts = sel.Counts
	for _, f := range files {
		if werr == nil {
			if err := f.Sync(); err != nil {
				werr = fmt.Errorf("%s: sync: %w", f.Name(), err)
			}
		}
		if err := f.Close(); err != nil && werr == nil {
			werr = fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	if werr != nil {
		res.Incomplete = true
		var se *SourceError
		if !errors.As(werr, &se) && !strings.Contains(werr.Error(), ".incomplete") {
			werr = fmt.Errorf("%w (the parts are at their .incomplete names, marked incomplete)", werr)
		}
		return res, werr
	}
	for _, d := range dests {
		if err := os.Rename(d+".incomplete", d); err != nil {
			return res, err
		}
		syncDir(d)
	}
	res.Dest = strings.Join(dests, " ")
	return res, nil
}

func tmpNames(dests []string) []string {
	out := make([]string, len(dests))
	for i, d := range dests {
		out[i] = d + ".incomplete"
	}
	return out
}

// splitCuts divides the kept frames into n parts of (nearly) equal
// counts: starts[i] is the first PFN of part i's range (0 for the first;
// a part that holds no page starts where the next one does), cuts[i] the
// rank of its first kept frame (cuts[n] the number kept). A range starts
// on a multiple of 64 frames: crash counts a part's pages by whole 64-bit
// words of the bitmap from start_pfn (diskdump.c, the valid_pages table
// pfn_to_pos reads), so a start inside a word would shift every
// descriptor it finds.
func splitCuts(sel *Selection, n int) (cuts []uint64, starts []uint64) {
	total := sel.Counts.Kept
	target := make([]uint64, n)
	for i := range target {
		target[i] = total * uint64(i) / uint64(n)
	}
	cuts = make([]uint64, n+1)
	cuts[n] = total
	starts = make([]uint64, n)
	for i := 1; i < n; i++ {
		starts[i], cuts[i] = sel.MaxPFN, total
	}
	var rank uint64
	next := 1 // the part whose start is looked for
	each := func(base uint64, kept *dump.PFNSet) {
		for i := kept.Next(0); i < kept.Len() && next < n; i = kept.Next(i + 1) {
			for next < n && rank == target[next] {
				// Back to the word's first frame; windows start on
				// multiples of 64, so it is in this window.
				a := max((base+i)&^63, starts[next-1])
				var below uint64
				for j := kept.Next(a - base); j < i; j = kept.Next(j + 1) {
					below++
				}
				starts[next], cuts[next] = a, rank-below
				next++
			}
			rank++
		}
	}
	if sel.Kept != nil {
		each(0, sel.Kept)
	} else {
		var scratch Counts
		var warnings []string
		for base, win := range sel.Windows(&scratch, &warnings) {
			_, kept := win()
			each(base, kept)
		}
	}
	return cuts, starts
}

// splitSink routes each page to the part whose range holds it, at its
// index in that part's descriptor table.
type splitSink struct {
	parts []*dump.KdumpWriter
	names []string
	cuts  []uint64
}

// start writes both bitmaps of the whole machine into every part, then
// fixes each part's table at its share of the pages.
func (s *splitSink) start(sel *Selection) error {
	write := func(base uint64, ram, kept *dump.PFNSet) error {
		for i, p := range s.parts {
			if err := p.WriteBitmaps(base, ram, kept); err != nil {
				return fmt.Errorf("%s: %w", s.names[i], err)
			}
		}
		return nil
	}
	var n uint64
	if sel.Kept != nil {
		if err := write(0, sel.RAM, sel.Kept); err != nil {
			return err
		}
		n = sel.Kept.Count()
	} else {
		var scratch Counts
		var warnings []string
		for base, win := range sel.Windows(&scratch, &warnings) {
			ram, kept := win()
			n += kept.Count()
			if err := write(base, ram, kept); err != nil {
				return err
			}
		}
	}
	if n != sel.Counts.Kept {
		return fmt.Errorf("the second classification keeps %d frames, the survey %d: is the source changing?", n, sel.Counts.Kept)
	}
	for i, p := range s.parts {
		if err := p.StartPagesIn(s.cuts[i+1]-s.cuts[i], n); err != nil {
			return fmt.Errorf("%s: %w", s.names[i], err)
		}
	}
	return nil
}

func (s *splitSink) WritePage(it item, p dump.EncodedPage) error {
	i := sort.Search(len(s.parts), func(i int) bool { return s.cuts[i+1] > it.idx })
	if i == len(s.parts) {
		return fmt.Errorf("split dump: page of frame %#x has index %d, past the %d pages of the parts", it.pfn, it.idx, s.cuts[len(s.parts)])
	}
	if err := s.parts[i].WritePageIndex(it.idx-s.cuts[i], it.pfn, p); err != nil {
		return fmt.Errorf("%s: %w", s.names[i], err)
	}
	return nil
}

func (s *splitSink) Close() error {
	var first error
	for i, p := range s.parts {
		if err := p.Close(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", s.names[i], err)
		}
	}
	return first
}

func (s *splitSink) Abort() error {
	for _, p := range s.parts {
		p.Abort()
	}
	return nil
}

func (s *splitSink) Size() int64 {
	var n int64
	for _, p := range s.parts {
		n += p.Size()
	}
	return n
}
