package dump

import (
	"encoding/binary"
	"fmt"
	"io"
)

// FlattenedWriter turns the positioned writes of a dump writer into
// makedumpfile's flattened stream (see flattened.go for the format;
// makedumpfile.c write_start_flat_header and write_buffer write the same):
// each WriteAt becomes one record, in the order of the calls, so the
// stream can go to a pipe or over ssh (-F). A region written twice (the
// kdump header, rewritten at the end without its incomplete flag) is two
// records; readers replay them in order and the later one wins.
type FlattenedWriter struct {
	w   io.Writer
	err error
	n   int64 // stream bytes written
}

// NewFlattenedWriter writes the flattened stream's header to w.
func NewFlattenedWriter(w io.Writer) (*FlattenedWriter, error) {
	h := make([]byte, flatHeaderSize)
	copy(h, "makedumpfile")
	binary.BigEndian.PutUint64(h[16:], flatTypeFlat)
	binary.BigEndian.PutUint64(h[24:], 1) // version
	f := &FlattenedWriter{w: w}
	f.put(h)
	return f, f.err
}

func (f *FlattenedWriter) put(b []byte) {
	if f.err != nil {
		return
	}
	n, err := f.w.Write(b)
	f.n += int64(n)
	if err != nil {
		f.err = fmt.Errorf("flattened stream: %w", err)
	}
}

// WriteAt emits p as a record for offset off of the dump file.
func (f *FlattenedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("flattened stream: negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, f.err
	}
	var rh [flatRecordSize]byte
	binary.BigEndian.PutUint64(rh[0:], uint64(off))
	binary.BigEndian.PutUint64(rh[8:], uint64(len(p)))
	f.put(rh[:])
	f.put(p)
	if f.err != nil {
		return 0, f.err
	}
	return len(p), nil
}

// Close writes the end marker. A stream without it is read as cut short.
func (f *FlattenedWriter) Close() error {
	var end [flatRecordSize]byte
	// offset and size both flatEndMarker (-1)
	binary.BigEndian.PutUint64(end[0:], ^uint64(0))
	binary.BigEndian.PutUint64(end[8:], ^uint64(0))
	f.put(end[:])
	return f.err
}

// Name names the stream in messages.
func (f *FlattenedWriter) Name() string { return "flattened stream" }

// Size is the number of stream bytes written.
func (f *FlattenedWriter) Size() int64 { return f.n }
