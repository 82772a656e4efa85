package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"salvage/dump/lzo"
)

// pageDescriptor is struct page_desc (diskdump_mod.h): where a dumped
// page's data is and how it is encoded.
type pageDescriptor struct {
	Offset    int64  // off_t offset of the page data
	Size      uint32 // bytes of page data in the file
	Flags     uint32 // DUMP_DH_COMPRESSED_* codec bit, or 0 for a raw page
	PageFlags uint64 // unused by makedumpfile and QEMU (always 0)
}

func parsePageDescriptor(b []byte) pageDescriptor {
	le := binary.LittleEndian
	return pageDescriptor{
		Offset:    int64(le.Uint64(b[0:])),
		Size:      le.Uint32(b[8:]),
		Flags:     le.Uint32(b[12:]),
		PageFlags: le.Uint64(b[16:]),
	}
}

// codec returns the codec a descriptor names. When several codec bits are
// set the first of zlib, lzo, snappy, zstd wins, the order crash's
// cache_page tests them in.
func (d pageDescriptor) codec() Compression {
	switch {
	case d.Flags&kdumpZlib != 0:
		return "zlib"
	case d.Flags&kdumpLZO != 0:
		return "lzo"
	case d.Flags&kdumpSnappy != 0:
		return "snappy"
	case d.Flags&kdumpZstd != 0:
		return "zstd"
	}
	return "none"
}

// pageCodecs decodes page data. One value serves one dump and is safe for
// concurrent use: zlib readers are pooled, and the zstd decoder (made on
// first use) runs concurrent DecodeAll calls on its own pool.
type pageCodecs struct {
	pageSize int
	zlibPool sync.Pool // of io.ReadCloser implementing zlib.Resetter

	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
}

func newPageCodecs(pageSize int) *pageCodecs {
	return &pageCodecs{pageSize: pageSize}
}

func (c *pageCodecs) close() error {
	if c.zstdDec != nil {
		c.zstdDec.Close()
	}
	return nil
}

var errPageSize = errors.New("decodes to the wrong size")

// decode decodes one page of data src, encoded with codec, into dst
// (len(dst) == page size).
func (c *pageCodecs) decode(dst, src []byte, codec Compression) error {
	switch codec {
	case "none":
		if len(src) != len(dst) {
			return fmt.Errorf("raw page holds %d bytes, want %d", len(src), len(dst))
		}
		copy(dst, src)
		return nil
	case "zlib":
		return c.zlib(dst, src)
	case "lzo":
		n, err := lzo.Decompress(dst, src)
		if err != nil {
			return err
		}
		if n != len(dst) {
			return fmt.Errorf("lzo: %w: %d bytes, want %d", errPageSize, n, len(dst))
		}
		return nil
	case "snappy":
		// makedumpfile and QEMU call snappy_compress: a raw snappy
		// block, which s2 decodes (snappy is a subset of S2).
		n, err := s2.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("snappy: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("snappy: %w: %d bytes, want %d", errPageSize, n, len(dst))
		}
		// With room for exactly DecodedLen bytes, Decode writes into dst.
		if _, err := s2.Decode(dst, src); err != nil {
			return fmt.Errorf("snappy: %w", err)
		}
		return nil
	case "zstd":
		return c.zstd(dst, src)
	}
	return fmt.Errorf("unknown codec %q", codec)
}

// zlib decodes a zlib stream (RFC 1950, with header and Adler-32):
// makedumpfile's compress_mdf and QEMU's compress2 write zlib, not raw
// deflate, and crash reads them with uncompress().
func (c *pageCodecs) zlib(dst, src []byte) error {
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if v := c.zlibPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return fmt.Errorf("zlib: %w", err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return fmt.Errorf("zlib: %w", err)
		}
	}
	defer c.zlibPool.Put(zr)
	if _, err := io.ReadFull(zr, dst); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return fmt.Errorf("zlib: %w: fewer than %d bytes", errPageSize, len(dst))
		}
		return fmt.Errorf("zlib: %w", err)
	}
	// The stream must end here, with a good checksum.
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 {
		return fmt.Errorf("zlib: %w: more than %d bytes", errPageSize, len(dst))
	} else if err != io.EOF {
		return fmt.Errorf("zlib: %w", err)
	}
	return nil
}

// zstd decodes one zstd frame (makedumpfile's ZSTD_compressCCtx).
func (c *pageCodecs) zstd(dst, src []byte) error {
	c.zstdOnce.Do(func() {
		c.zstdDec, c.zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(uint64(c.pageSize)),
			zstd.WithDecoderMaxWindow(8<<20))
	})
	if c.zstdErr != nil {
		return fmt.Errorf("zstd: %w", c.zstdErr)
	}
	out, err := c.zstdDec.DecodeAll(src, dst[:0])
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if len(out) != len(dst) {
		return fmt.Errorf("zstd: %w: %d bytes, want %d", errPageSize, len(out), len(dst))
	}
	if &out[0] != &dst[0] {
		copy(dst, out)
	}
	return nil
}
