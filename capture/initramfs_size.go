package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// InitramfsSize is what an initramfs costs the capture kernel while it
// boots: the file itself, which the kernel holds until it has unpacked it
// ("Freeing initrd memory"), and the unpacked files, which stay in the
// rootfs page cache — each file rounded up to whole pages.
type InitramfsSize struct {
	File     uint64 `json:"file"`
	Unpacked uint64 `json:"unpacked"`
	Files    int    `json:"files"`
	// Guessed: part of the archive is compressed with a codec salvage
	// does not read (xz, lz4, bzip2, lzma); Unpacked counts it as four
	// times its compressed size.
	Guessed string `json:"guessed,omitempty"`
}

// guessRatio is the unpacked size assumed per compressed byte of a codec
// salvage cannot read (xz and lzma do about 4:1 on an initramfs).
const guessRatio = 4

// MeasureInitramfs reads an initramfs as the kernel unpacks it
// (init/initramfs.c unpack_to_rootfs): newc cpio archives, zero padding
// between them, and a compressed archive, possibly after uncompressed
// ones (the early microcode cpio).
func MeasureInitramfs(name string) (*InitramfsSize, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s := &InitramfsSize{File: uint64(st.Size())}
	br := bufio.NewReaderSize(f, 64<<10)
	if err := s.walk(br, false); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	otherMagic = map[string][]byte{"xz": {0xfd, '7', 'z', 'X', 'Z', 0}, "lz4": {0x02, 0x21, 0x4c, 0x18},
		"bzip2": []byte("BZh"), "lzma": {0x5d, 0, 0}}
)

// walk reads archives from br until its end; inner is true inside a
// decompressed stream (no further compression there).
func (s *InitramfsSize) walk(br *bufio.Reader, inner bool) error {
	for {
		b, err := br.Peek(6)
		if len(b) == 0 && err == io.EOF {
			return nil
		}
		switch {
		case len(b) > 0 && b[0] == 0:
			br.ReadByte() // padding between archives
		case bytes.HasPrefix(b, []byte("07070")):
			if err := s.entry(br); err != nil {
				return err
			}
		case !inner && bytes.HasPrefix(b, gzipMagic):
			zr, err := gzip.NewReader(br)
			if err != nil {
				return err
			}
			return s.walk(bufio.NewReaderSize(zr, 64<<10), true)
		case !inner && bytes.HasPrefix(b, zstdMagic):
			zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(1<<30))
			if err != nil {
				return err
			}
			defer zr.Close()
			return s.walk(bufio.NewReaderSize(zr, 64<<10), true)
		default:
			for name, m := range otherMagic {
				if !inner && bytes.HasPrefix(b, m) {
					n, err := io.Copy(io.Discard, br)
					if err != nil {
						return err
					}
					s.Guessed = name
					s.Unpacked += uint64(n) * guessRatio
					return nil
				}
			}
			if err != nil && err != io.EOF {
				return err
			}
			return fmt.Errorf("not an initramfs: unknown data %x", b)
		}
	}
}

// entry reads one newc entry (header 110 bytes: magic, then 13 fields of
// 8 hex digits; name and data each padded to 4 bytes,
// Documentation/driver-api/early-userspace/buffer-format.rst).
func (s *InitramfsSize) entry(br *bufio.Reader) error {
	var h [110]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return fmt.Errorf("truncated cpio header: %w", err)
	}
	field := func(i int) (uint64, error) {
		return strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
	}
	size, err1 := field(6)
	nameSize, err2 := field(11)
	if err1 != nil || err2 != nil || nameSize == 0 {
		return errors.New("bad cpio header")
	}
	if nameSize > 4096 {
		// The kernel refuses names longer than PATH_MAX
		// (init/initramfs.c do_header).
		return fmt.Errorf("cpio name of %d bytes: longer than PATH_MAX", nameSize)
	}
	name := make([]byte, pad4(110+nameSize)-110)
	if _, err := io.ReadFull(br, name); err != nil {
		return fmt.Errorf("truncated cpio name: %w", err)
	}
	if string(name[:nameSize-1]) == "TRAILER!!!" {
		return nil
	}
	if _, err := io.CopyN(io.Discard, br, int64(pad4(size))); err != nil {
		return fmt.Errorf("truncated cpio data of %q: %w", name[:nameSize-1], err)
	}
	s.Files++
	s.Unpacked += (size + 4095) / 4096 * 4096
	return nil
}

func pad4(n uint64) uint64 { return (n + 3) &^ 3 }
