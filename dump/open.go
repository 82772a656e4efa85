package dump

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Open opens a dump from one file, or a split dump from all its parts.
// The format is detected from the content.
func Open(paths ...string) (*File, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no dump file given")
	}
	if len(paths) > 1 {
		return openSplit(paths)
	}
	fh, err := os.Open(paths[0])
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	f, err := NewFile(fh, st.Size(), paths[0])
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closers = append(f.closers, fh.Close)
	return f, nil
}

// Signatures that identify the formats.
var (
	elfMagic       = []byte("\x7fELF")
	kdumpSignature = []byte("KDUMP   ")
	flatSignature  = []byte("makedumpfile") // MAKEDUMPFILE_SIGNATURE, NUL-padded to 16 bytes
)

// NewFile reads a dump from r, which holds size bytes; name is used in
// messages. The caller keeps r open while the File is used.
func NewFile(r io.ReaderAt, size int64, name string) (*File, error) {
	var head [16]byte
	n, err := r.ReadAt(head[:], 0)
	if n < len(head) {
		if err == nil || err == io.EOF {
			return nil, &FormatError{File: name, Off: 0, Msg: fmt.Sprintf("file is only %d bytes: not a crash dump", size)}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(head[:], elfMagic):
		return openELF(r, size, name)
	case bytes.HasPrefix(head[:], kdumpSignature):
		return openKdump(r, size, name)
	case bytes.HasPrefix(head[:], flatSignature):
		return openFlattened(r, size, name)
	}
	return nil, &FormatError{File: name, Off: 0, Msg: fmt.Sprintf("unknown dump format (first bytes %q): expected an ELF core, a kdump-compressed file or a makedumpfile flattened stream", head[:8])}
}
