package collect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"salvage/dump"
)

// The pipeline: one goroutine cuts the items (kept frames, classified
// window by window) into batches, workers read and encode batches in
// parallel (reading through dump.Memory, which is safe for concurrent
// use), and the caller's goroutine writes the batches in order. At most
// 3×workers batches are in flight (2×workers queued, one per worker), so
// memory stays bounded whatever the size of the dump: each batch holds
// its raw pages and their encodings, under 2 × batchPages pages.
const batchPages = 64

// item is one piece of memory the pipeline copies: a page, or the partial
// first or last page of an ELF segment.
type item struct {
	pfn  uint64
	addr uint64 // physical address
	n    int    // bytes
	// keep: the page is one the dump keeps, so failing to read it is an
	// error; other pages (written inside an ELF PT_LOAD only to avoid a
	// new segment) read as zeroes when the source lacks them.
	keep bool
	// idx is the page's descriptor in a kdump-compressed file (its rank
	// among the kept frames), for writers that take pages out of order.
	idx uint64
}

// itemSource yields the items of a dump in the order the writer stores them.
type itemSource func(yield func(item) bool)

// keptPages is the item source of a kdump-compressed dump: every kept
// frame with its descriptor index, from the selection's bitmap or, for a
// survey, from its windows classified again one at a time. With
// needsFirst, the frames the analyzer needs (kernel image, page tables,
// tasks and stacks) come first and then the others, each pass in PFN
// order: a dump cut short (a full disk, a killed collector, a power cut
// in the capture kernel) then still holds what the analyzer opens a dump
// with, where a PFN-ordered one cut at half lacks everything above that
// half — on a KASLR kernel, often its image.
func (sel *Selection) keptPages(needsFirst bool) itemSource {
	ps := uint64(sel.PageSize)
	return func(yield func(item) bool) {
		passes := []int{0}
		if needsFirst && sel.needs != nil && len(sel.needs.pfns) > 0 {
			passes = []int{1, 2}
		}
		for _, pass := range passes {
			var idx uint64 // descriptor index of the next kept frame
			each := func(base uint64, kept *dump.PFNSet) bool {
				for i := kept.Next(0); i < kept.Len(); i = kept.Next(i + 1) {
					pfn := base + i
					idx++
					if pass != 0 && sel.needs.has(pfn) != (pass == 1) {
						continue
					}
					if !yield(item{pfn: pfn, addr: pfn * ps, n: int(ps), keep: true, idx: idx - 1}) {
						return false
					}
				}
				return true
			}
			if sel.Kept != nil {
				if !each(0, sel.Kept) {
					return
				}
				continue
			}
			var scratch Counts
			var warnings []string
			for base, win := range sel.Windows(&scratch, &warnings) {
				_, kept := win()
				if !each(base, kept) {
					return
				}
			}
		}
	}
}

type batch struct {
	items []item
	pages []dump.EncodedPage
	// missing marks the items the source lacks (skipMissing only).
	missing []bool
	data    []byte // backing store of the encoded pages
	raw     []byte // the pages as read
	err     error
	done    chan struct{}
}

func runPipeline(ctx context.Context, mem dump.Memory, sel *Selection, items itemSource, total uint64, codec dump.Compression, w pageSink, opt Options, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nw := workers(opt.Threads)
	ps := mem.PageSize()
	zeroes := sel.Plan.Level&LevelZero != 0 && opt.Format == FormatKdump
	// A kdump-compressed file can say a page is missing (a descriptor
	// left zero), so the pages a truncated source lacks are skipped and
	// the dump goes on; an ELF file cannot, so it stops there.
	skipMissing := opt.Format == FormatKdump
	prog := newProgress(opt.Progress, opt.Terminal, "Copying data", total)
	prog.json = opt.ProgressJSON
	prog.pageSize = uint64(sel.PageSize)

	jobs := make(chan *batch, nw)
	order := make(chan *batch, 2*nw)
	// Batches are recycled, buffers and all: at most 2×nw queued, nw
	// being encoded, one being written and one being filled exist at
	// once, so after the first few no batch is allocated (fresh memory
	// is what a collector pays most for in a capture kernel, and on a
	// virtual machine whose every new page is a fault to the host).
	free := make(chan *batch, 3*nw+2)
	newBatch := func() *batch {
		select {
		case b := <-free:
			b.items, b.pages, b.missing, b.err = b.items[:0], b.pages[:0], nil, nil
			return b
		default:
			return &batch{done: make(chan struct{}, 1), items: make([]item, 0, batchPages)}
		}
	}
	go func() {
		defer close(jobs)
		defer close(order)
		b := newBatch()
		send := func() bool {
			select {
			case order <- b:
			case <-ctx.Done():
				return false
			}
			select {
			case jobs <- b:
			case <-ctx.Done():
				return false
			}
			b = newBatch()
			return true
		}
		ok := true
		items(func(it item) bool {
			b.items = append(b.items, it)
			if len(b.items) == batchPages {
				ok = send()
			}
			return ok
		})
		if ok && len(b.items) > 0 {
			send()
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < nw; i++ {
		enc, err := dump.NewPageEncoder(codec)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer enc.Close()
			for b := range jobs {
				encodeBatch(mem, enc, b, ps, zeroes, skipMissing)
				b.done <- struct{}{}
			}
		}()
	}

	var err error
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil {
			err = b.err
		}
		for i := 0; err == nil && i < len(b.items); i++ {
			if b.missing != nil && b.missing[i] {
				if res.Missing == 0 {
					res.FirstMissing = b.items[i].addr
				}
				res.Missing++
				continue
			}
			p := b.pages[i]
			if p.Zero && zeroes {
				sel.Counts.Zero++
			}
			err = w.WritePage(b.items[i], p)
			res.Pages++
		}
		if err != nil {
			cancel()
			break
		}
		// The writers copy what they are given: the batch serves again.
		prog.add(uint64(len(b.items)))
		select {
		case free <- b:
		default:
		}
	}
	cancel()
	for range order {
	}
	wg.Wait()
	var mp *missingPage
	switch {
	case err == nil && res.Missing > 0:
		err = &SourceError{Source: sourceName(sel), Missing: res.Missing, Total: total, FirstAddr: res.FirstMissing, End: sel.sourceEnd}
	case errors.As(err, &mp):
		err = &SourceError{Source: sourceName(sel), Missing: 1, Total: total, FirstAddr: mp.addr, End: sel.sourceEnd, Stopped: true}
	}
	if err == nil {
		prog.finish()
	} else {
		prog.stop()
	}
	return err
}

// encodeBatch reads and encodes the pages of one batch. Consecutive whole
// pages are read with one ReadPhys (one pread on an ELF source).
func encodeBatch(mem dump.Memory, enc *dump.PageEncoder, b *batch, ps int, zeroes, skipMissing bool) {
	// Each encoded page is smaller than the page (else it is stored
	// raw, from raw), so data never outgrows len(items) pages.
	b.pages = slices.Grow(b.pages[:0], len(b.items))[:len(b.items)]
	clear(b.pages)
	if cap(b.data) < len(b.items)*ps {
		b.data = make([]byte, 0, batchPages*ps)
	}
	b.data = b.data[:0]
	if cap(b.raw) < len(b.items)*ps {
		b.raw = make([]byte, batchPages*ps)
	}
	raw := b.raw[:len(b.items)*ps]
	for i := 0; i < len(b.items); {
		// A run of whole, kept, consecutive pages.
		j := i + 1
		if b.items[i].n == ps && b.items[i].keep {
			for j < len(b.items) && b.items[j].n == ps && b.items[j].keep && b.items[j].addr == b.items[j-1].addr+uint64(ps) {
				j++
			}
		}
		it := b.items[i]
		span := raw[i*ps : (i*ps)+(j-i-1)*ps+it.n]
		if n, err := mem.ReadPhys(span, it.addr); err != nil {
			if j-i > 1 || it.keep {
				// Read page by page to name the page that fails.
				for k := i; k < j; k++ {
					p := raw[k*ps : k*ps+b.items[k].n]
					if _, err := mem.ReadPhys(p, b.items[k].addr); err != nil {
						var pe *dump.PageError
						if skipMissing && errors.As(err, &pe) && pe.State == dump.PageMissing {
							if b.missing == nil {
								b.missing = make([]bool, len(b.items))
							}
							b.missing[k] = true
							continue
						}
						if errors.As(err, &pe) && pe.State == dump.PageMissing {
							b.err = &missingPage{addr: b.items[k].addr}
							return
						}
						b.err = fmt.Errorf("reading the page of frame %#x: %w", b.items[k].pfn, err)
						return
					}
				}
			} else {
				clear(span[n:])
			}
		}
		for k := i; k < j; k++ {
			if b.missing != nil && b.missing[k] {
				continue
			}
			if err := encodeOne(enc, b, k, raw[k*ps:k*ps+b.items[k].n], zeroes, b.items[k].n == ps); err != nil {
				b.err = err
				return
			}
		}
		i = j
	}
}

// encodeOne encodes item i of b, whose bytes are page.
func encodeOne(enc *dump.PageEncoder, b *batch, i int, page []byte, zeroes, whole bool) error {
	if zeroes && whole && isZero(page) {
		b.pages[i] = dump.EncodedPage{Zero: true, Codec: "none"}
		return nil
	}
	if !whole {
		// A partial page (ELF segment ends) is stored as it is.
		b.pages[i] = dump.EncodedPage{Data: page, Codec: "none"}
		return nil
	}
	e, err := enc.Encode(page)
	if err != nil {
		return fmt.Errorf("compressing the page of frame %#x: %w", b.items[i].pfn, err)
	}
	if e.Codec == "none" {
		// The raw page stays in the batch's read buffer.
		b.pages[i] = dump.EncodedPage{Data: page, Codec: "none"}
		return nil
	}
	if len(b.data)+len(e.Data) > cap(b.data) {
		// A new block rather than append's copy of all the batch's
		// pages so far: those already encoded keep the old one alive.
		b.data = make([]byte, 0, max(cap(b.data), len(e.Data)))
	}
	start := len(b.data)
	b.data = append(b.data, e.Data...)
	e.Data = b.data[start:len(b.data):len(b.data)]
	b.pages[i] = e
	return nil
}

// SourceError says the source lacks pages the dump should hold: a copy of
// /proc/vmcore cut short, a flattened stream that ended early, a dump
// marked incomplete. The pages it has are written; the others are left
// missing in a dump marked incomplete.
type SourceError struct {
	Source    string
	Missing   uint64 // pages the source lacks
	Total     uint64 // pages the dump was to hold
	FirstAddr uint64 // physical address of the first
	// End, for an ELF source shorter than its program headers say, is
	// where the file ends and where they reach.
	End *SourceEnd
	// Stopped: the dump stopped at the first missing page (an ELF dump
	// cannot say a page is missing).
	Stopped bool
}

// missingPage is a page the source lacks, met by a writer that cannot
// leave it missing.
type missingPage struct{ addr uint64 }

func (e *missingPage) Error() string {
	return fmt.Sprintf("physical address %#x: page missing", e.addr)
}

// SourceEnd is where a truncated ELF file ends, and where it should.
type SourceEnd struct {
	Size, Want int64
}

func (e *SourceError) Error() string {
	s := fmt.Sprintf("%s ends early: %d of the %d pages to dump are missing from it, the first at physical address %#x", e.Source, e.Missing, e.Total, e.FirstAddr)
	if e.Stopped {
		s = fmt.Sprintf("%s ends early: the page at physical address %#x is missing from it, and an ELF dump cannot mark a page missing, so it stops there", e.Source, e.FirstAddr)
	}
	if e.End != nil {
		s += fmt.Sprintf(" (the file ends at offset %#x; its program headers reach offset %#x)", e.End.Size, e.End.Want)
	}
	return s
}

func sourceName(sel *Selection) string {
	if sel.sourceName != "" {
		return sel.sourceName
	}
	return "the source"
}
