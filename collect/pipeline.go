package collect

import (
	"context"
	"fmt"
	"sync"

	"salvage/dump"
)

// The pipeline: one goroutine cuts the kept frames into batches, workers
// read and encode batches in parallel (reading through dump.Memory, which
// is safe for concurrent use), and the caller's goroutine writes the
// batches in PFN order. At most 2×workers batches are in flight, so memory
// stays bounded whatever the size of the dump: about
// 2 × workers × batchPages × 2 pages.
const batchPages = 256

type batch struct {
	pfns  []uint64
	pages []dump.EncodedPage
	data  []byte // backing store of the encoded pages
	err   error
	done  chan struct{}
}

func runPipeline(ctx context.Context, mem dump.Memory, sel *Selection, w pageSink, opt Options, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nw := workers(opt.Threads)
	ps := mem.PageSize()
	zeroes := sel.Plan.Level&LevelZero != 0
	total := sel.Kept.Count()
	prog := newProgress(opt.Progress, opt.Terminal, "Copying data", total)

	jobs := make(chan *batch, nw)
	order := make(chan *batch, 2*nw)
	go func() {
		defer close(jobs)
		defer close(order)
		pfn := sel.Kept.Next(0)
		for pfn < sel.MaxPFN {
			b := &batch{done: make(chan struct{})}
			for len(b.pfns) < batchPages && pfn < sel.MaxPFN {
				b.pfns = append(b.pfns, pfn)
				pfn = sel.Kept.Next(pfn + 1)
			}
			select {
			case order <- b:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < nw; i++ {
		enc, err := dump.NewPageEncoder(opt.Compression)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer enc.Close()
			page := make([]byte, ps)
			for b := range jobs {
				encodeBatch(mem, enc, b, page, zeroes)
				close(b.done)
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
		for i := 0; err == nil && i < len(b.pfns); i++ {
			p := b.pages[i]
			if p.Zero && zeroes {
				sel.Counts.Zero++
			}
			err = w.WritePage(b.pfns[i], p)
			res.Pages++
		}
		if err != nil {
			cancel()
			break
		}
		prog.add(uint64(len(b.pfns)))
	}
	cancel()
	for range order {
	}
	wg.Wait()
	if err == nil {
		prog.finish()
	} else {
		prog.stop()
	}
	return err
}

// encodeBatch reads and encodes the pages of one batch.
func encodeBatch(mem dump.Memory, enc *dump.PageEncoder, b *batch, page []byte, zeroes bool) {
	ps := len(page)
	b.pages = make([]dump.EncodedPage, len(b.pfns))
	b.data = make([]byte, 0, len(b.pfns)*ps/2)
	for i, pfn := range b.pfns {
		if _, err := mem.ReadPhys(page, pfn*uint64(ps)); err != nil {
			b.err = fmt.Errorf("reading the page of frame %#x: %w", pfn, err)
			return
		}
		if zeroes && isZero(page) {
			b.pages[i] = dump.EncodedPage{Zero: true}
			// Without a shared zero page (ELF), the writer needs the bytes.
			b.pages[i].Data, b.pages[i].Codec = nil, "none"
			continue
		}
		e, err := enc.Encode(page)
		if err != nil {
			b.err = fmt.Errorf("compressing the page of frame %#x: %w", pfn, err)
			return
		}
		start := len(b.data)
		b.data = append(b.data, e.Data...)
		e.Data = b.data[start:len(b.data):len(b.data)]
		b.pages[i] = e
	}
}
