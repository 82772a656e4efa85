package dump

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// The flattened format is what makedumpfile -F (and QEMU before 8.2, for
// every kdump-compressed dump) writes to a pipe: the dump file's bytes as
// a stream of records that say where they belong (makedumpfile.h,
// struct makedumpfile_header and struct makedumpfile_data_header;
// makedumpfile.c write_start_flat_header, write_buffer, rearrange_dumpdata):
//
//	4096 bytes   header: signature "makedumpfile" NUL-padded to 16 bytes,
//	             int64 type (1), int64 version (1), zero padding
//	records      int64 offset, int64 size, then size bytes of data that go
//	             at offset of the reassembled file
//	16 bytes     end marker: offset -1, size -1
//
// All integers are big-endian. makedumpfile -R replays the records in
// order with pwrite, so where records overlap the later one wins, and
// bytes no record covers are zero (holes in the reassembled file).
const (
	flatHeaderSize  = 4096
	flatRecordSize  = 16
	flatTypeFlat    = 1
	flatEndMarker   = -1
	flatSigFieldLen = 16
)

// flatRecord is one data record: Size bytes at stream offset Src belong
// at offset Off of the reassembled file.
type flatRecord struct {
	Off, Size, Src int64
}

// flatIndex is the result of one pass over a flattened stream.
type flatIndex struct {
	Version  int64
	Records  []flatRecord // in stream order
	Complete bool         // the end marker was found
	DataSize int64        // bytes of record data
}

// indexFlattened reads the header and every record header of a flattened
// stream, seeking over the data. A stream that stops early (no end
// marker, or a record cut short) is indexed up to where it stops and
// reported with Complete false: what arrived can still be read.
func indexFlattened(r io.ReaderAt, size int64, name string) (*flatIndex, error) {
	ferr := func(off int64, format string, a ...any) error {
		return &FormatError{File: name, Off: off, Msg: "flattened: " + fmt.Sprintf(format, a...)}
	}
	if size < flatHeaderSize {
		return nil, ferr(0, "stream is %d bytes, shorter than its %d-byte header", size, flatHeaderSize)
	}
	var h [32]byte
	if err := kdumpRead(r, h[:], 0, name); err != nil {
		return nil, err
	}
	if !bytes.Equal(bytes.TrimRight(h[:flatSigFieldLen], "\x00"), flatSignature) {
		return nil, ferr(0, "signature %q, expected %q", h[:flatSigFieldLen], flatSignature)
	}
	be := binary.BigEndian
	if typ := int64(be.Uint64(h[16:])); typ != flatTypeFlat {
		return nil, ferr(16, "header type %d, expected %d (TYPE_FLAT_HEADER)", typ, flatTypeFlat)
	}
	idx := &flatIndex{Version: int64(be.Uint64(h[24:]))}

	// A reassembled dump is never much larger than its stream: makedumpfile
	// and QEMU write every byte but the unused tails of the header blocks.
	// Bounding it by the stream's size keeps a corrupt record header from
	// making a view of exabytes that later code would size allocations by.
	maxEnd := 2*size + 1<<20

	// Record headers are read through a window so that a stream of small
	// records costs one read per window, not one per record.
	var win [64 << 10]byte
	winOff, winLen := int64(0), 0
	pos := int64(flatHeaderSize)
	for {
		if pos+flatRecordSize > size {
			// The stream ends (perhaps in a record header): cut short.
			return idx, nil
		}
		if pos < winOff || pos+flatRecordSize > winOff+int64(winLen) {
			n, err := r.ReadAt(win[:], pos)
			if n < flatRecordSize {
				if err == nil || err == io.EOF {
					return idx, nil
				}
				return nil, fmt.Errorf("%s: read at offset %#x: %w", name, pos, err)
			}
			winOff, winLen = pos, n
		}
		rec := win[pos-winOff:]
		off, sz := int64(be.Uint64(rec)), int64(be.Uint64(rec[8:]))
		if off == flatEndMarker && sz == flatEndMarker {
			idx.Complete = true
			return idx, nil
		}
		switch {
		case off < 0 || sz < 0:
			return nil, ferr(pos, "record %d has offset %d and size %d (neither data nor the end marker)", len(idx.Records), off, sz)
		case off > maxEnd || sz > maxEnd-off:
			return nil, ferr(pos, "record %d puts %d bytes at offset %#x, far beyond what a %d-byte stream can hold", len(idx.Records), sz, off, size)
		}
		data := pos + flatRecordSize
		if sz > size-data {
			// Cut short: keep what arrived.
			if avail := size - data; avail > 0 {
				idx.Records = append(idx.Records, flatRecord{Off: off, Size: avail, Src: data})
				idx.DataSize += avail
			}
			return idx, nil
		}
		if sz > 0 {
			idx.Records = append(idx.Records, flatRecord{Off: off, Size: sz, Src: data})
			idx.DataSize += sz
		}
		pos = data + sz
	}
}

// flatView is the reassembled file as an io.ReaderAt over the stream:
// the file makedumpfile -R would write, without writing it.
type flatView struct {
	r    io.ReaderAt
	segs []flatRecord // sorted by Off, not overlapping
	size int64        // end of the last segment
}

// newFlatView resolves overlapping records (the later record wins, as it
// does when -R replays them) into sorted, disjoint segments.
func newFlatView(r io.ReaderAt, recs []flatRecord) *flatView {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return recs[order[a]].Off < recs[order[b]].Off })
	overlap := false
	for i := 1; i < len(order); i++ {
		p, c := recs[order[i-1]], recs[order[i]]
		if p.Off+p.Size > c.Off {
			overlap = true
			break
		}
	}
	v := &flatView{r: r}
	if !overlap {
		v.segs = make([]flatRecord, len(order))
		for i, k := range order {
			v.segs[i] = recs[k]
		}
	} else {
		v.segs = resolveOverlaps(recs, order)
	}
	if n := len(v.segs); n > 0 {
		v.size = v.segs[n-1].Off + v.segs[n-1].Size
	}
	return v
}

// resolveOverlaps sweeps the boundaries of all records in offset order;
// between two boundaries the covering record that came last in the
// stream owns the bytes. order lists the records sorted by offset.
func resolveOverlaps(recs []flatRecord, order []int) []flatRecord {
	bounds := make([]int64, 0, 2*len(recs))
	for _, r := range recs {
		bounds = append(bounds, r.Off, r.Off+r.Size)
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })
	var segs []flatRecord
	var active latestRecord
	active.recs = recs
	next := 0
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		if lo == hi {
			continue
		}
		for next < len(order) && recs[order[next]].Off <= lo {
			heap.Push(&active, order[next])
			next++
		}
		for active.Len() > 0 && recs[active.idx[0]].Off+recs[active.idx[0]].Size <= lo {
			heap.Pop(&active)
		}
		if active.Len() == 0 {
			continue
		}
		top := recs[active.idx[0]]
		src := top.Src + (lo - top.Off)
		if n := len(segs); n > 0 && segs[n-1].Off+segs[n-1].Size == lo && segs[n-1].Src+segs[n-1].Size == src {
			segs[n-1].Size += hi - lo
			continue
		}
		segs = append(segs, flatRecord{Off: lo, Size: hi - lo, Src: src})
	}
	return segs
}

// latestRecord is a max-heap of record indices: the top is the record
// that came last in the stream.
type latestRecord struct {
	recs []flatRecord
	idx  []int
}

func (h latestRecord) Len() int           { return len(h.idx) }
func (h latestRecord) Less(i, j int) bool { return h.idx[i] > h.idx[j] }
func (h latestRecord) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *latestRecord) Push(x any)        { h.idx = append(h.idx, x.(int)) }
func (h *latestRecord) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// ReadAt reads the reassembled file; holes read as zeroes.
func (v *flatView) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("flattened view: negative offset %d", off)
	}
	n := 0
	// The first segment that ends after off.
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].Off+v.segs[i].Size > off })
	for n < len(p) {
		pos := off + int64(n)
		if pos >= v.size {
			return n, io.EOF
		}
		for i < len(v.segs) && v.segs[i].Off+v.segs[i].Size <= pos {
			i++
		}
		s := v.segs[i]
		want := int64(len(p) - n)
		if pos < s.Off {
			gap := min(want, s.Off-pos)
			clear(p[n : n+int(gap)])
			n += int(gap)
			continue
		}
		chunk := min(want, s.Off+s.Size-pos)
		m, err := v.r.ReadAt(p[n:n+int(chunk)], s.Src+(pos-s.Off))
		n += m
		if m < int(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// written reports whether records cover every byte of [off, off+n).
func (v *flatView) written(off, n int64) bool {
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].Off+v.segs[i].Size > off })
	for n > 0 {
		if i == len(v.segs) || v.segs[i].Off > off {
			return false
		}
		end := v.segs[i].Off + v.segs[i].Size
		n -= end - off
		off = end
		i++
	}
	return true
}

// Size is the size of the reassembled file.
func (v *flatView) Size() int64 { return v.size }

// openFlattened reads a makedumpfile flattened stream: it indexes the
// records and opens the reassembled file (kdump-compressed or ELF)
// through a view, without writing it out.
func openFlattened(r io.ReaderAt, size int64, name string) (*File, error) {
	idx, err := indexFlattened(r, size, name)
	if err != nil {
		return nil, err
	}
	v := newFlatView(r, idx.Records)
	var head [16]byte
	if n, _ := v.ReadAt(head[:], 0); n == len(head) && bytes.HasPrefix(head[:], flatSignature) {
		return nil, &FormatError{File: name, Off: -1, Msg: "flattened: the reassembled file is itself a flattened stream"}
	}
	f, err := NewFile(v, v.Size(), name)
	if err != nil {
		if !idx.Complete {
			return nil, fmt.Errorf("%w (the flattened stream has no end marker: it was cut short after %d records)", err, len(idx.Records))
		}
		return nil, err
	}
	f.Inner = f.Format
	f.Format = FormatFlattened
	part := Part{Path: name, Size: size, Records: len(idx.Records)}
	if len(f.Parts) == 1 {
		// A flattened part of a split dump.
		part.StartPFN, part.EndPFN = f.Parts[0].StartPFN, f.Parts[0].EndPFN
	}
	f.Parts = []Part{part}
	if !idx.Complete {
		// The stream stopped before its end marker: a pipe or copy cut
		// short, so pages written later are missing from the view.
		f.Incomplete = true
	}
	return f, nil
}

// Flattened is an indexed makedumpfile flattened stream: the reassembled
// file, readable in place, or written out by WriteTo.
type Flattened struct {
	Records  int   // data records in the stream
	Complete bool  // the end marker was found
	DataSize int64 // bytes of record data
	view     *flatView
}

// IndexFlattened indexes the flattened stream r (size bytes, named name
// in messages) in one pass over its record headers.
func IndexFlattened(r io.ReaderAt, size int64, name string) (*Flattened, error) {
	idx, err := indexFlattened(r, size, name)
	if err != nil {
		return nil, err
	}
	return &Flattened{Records: len(idx.Records), Complete: idx.Complete, DataSize: idx.DataSize, view: newFlatView(r, idx.Records)}, nil
}

// ReadAt reads the reassembled file; holes read as zeroes.
func (f *Flattened) ReadAt(p []byte, off int64) (int, error) { return f.view.ReadAt(p, off) }

// Size is the size of the reassembled file.
func (f *Flattened) Size() int64 { return f.view.Size() }

// WriteTo writes the reassembled file's data to w at its offsets, in
// offset order, leaving holes unwritten (w should start empty, so that
// they read as zeroes, as they do after makedumpfile -R). It returns the
// number of bytes written.
func (f *Flattened) WriteTo(w io.WriterAt) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for _, s := range f.view.segs {
		for done := int64(0); done < s.Size; {
			n := min(int64(len(buf)), s.Size-done)
			if m, err := f.view.r.ReadAt(buf[:n], s.Src+done); int64(m) < n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return total, fmt.Errorf("read stream at offset %#x: %w", s.Src+done, err)
			}
			if _, err := w.WriteAt(buf[:n], s.Off+done); err != nil {
				return total, err
			}
			done += n
			total += n
		}
	}
	return total, nil
}
