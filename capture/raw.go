package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"time"

	"salvage/collect"
	"salvage/dump"
)

// A raw target (kdump.conf's `raw <device>`) takes the dump as
// makedumpfile's flattened stream written straight to a block device, as
// kexec-tools' kdump does with `makedumpfile -F > /dev/sdX`. salvage puts
// a header block in front of the stream so that `salvage kdump savecore`
// can tell a dump is there, how long it is, when it was taken and whether
// it is complete — kexec-tools leaves that to the user's memory — and
// the kernel log after it.
//
// The header block (rawHeaderSize bytes at offset 0, little-endian):
//
//	0   magic "SALVAGE-RAWDUMP\0"
//	16  version (1)            uint32
//	20  flags (1: complete)    uint32
//	24  stream offset          uint64
//	32  stream length          uint64
//	40  dmesg offset           uint64
//	48  dmesg length           uint64
//	56  stamp, NUL-padded      [32]byte
//	88  release, NUL-padded    [65]byte
//	156 crc32 (IEEE) of bytes 0–155
const (
	rawHeaderSize  = 4096
	rawMagic       = "SALVAGE-RAWDUMP\x00"
	rawVersion     = 1
	rawFlagDone    = 1
	rawHeaderBytes = 156
)

// RawHeader is the header of a raw target's dump.
type RawHeader struct {
	Complete    bool   `json:"complete"`
	StreamOff   uint64 `json:"stream_offset"`
	StreamLen   uint64 `json:"stream_length"`
	DmesgOff    uint64 `json:"dmesg_offset,omitempty"`
	DmesgLen    uint64 `json:"dmesg_length,omitempty"`
	Stamp       string `json:"stamp"`
	Release     string `json:"release,omitempty"`
	Device      string `json:"device,omitempty"`
	DeviceBytes int64  `json:"device_bytes,omitempty"`
}

// ErrNoRawDump is the error of a device without a raw dump header.
var ErrNoRawDump = errors.New("no salvage raw dump header")

func (h *RawHeader) marshal() []byte {
	b := make([]byte, rawHeaderSize)
	copy(b, rawMagic)
	binary.LittleEndian.PutUint32(b[16:], rawVersion)
	if h.Complete {
		binary.LittleEndian.PutUint32(b[20:], rawFlagDone)
	}
	binary.LittleEndian.PutUint64(b[24:], h.StreamOff)
	binary.LittleEndian.PutUint64(b[32:], h.StreamLen)
	binary.LittleEndian.PutUint64(b[40:], h.DmesgOff)
	binary.LittleEndian.PutUint64(b[48:], h.DmesgLen)
	copy(b[56:88], h.Stamp)
	copy(b[88:153], h.Release)
	binary.LittleEndian.PutUint32(b[rawHeaderBytes:], crc32.ChecksumIEEE(b[:rawHeaderBytes]))
	return b
}

// ReadRawHeader reads the header of a raw target's dump from r, named
// name in errors. ErrNoRawDump means none is there (never written, or
// cleared by savecore).
func ReadRawHeader(r io.ReaderAt, name string) (*RawHeader, error) {
	b := make([]byte, rawHeaderBytes+4)
	if n, err := r.ReadAt(b, 0); n < len(b) {
		return nil, fmt.Errorf("%s: reading the raw dump header: %v", name, err)
	}
	if string(b[:16]) != rawMagic {
		return nil, fmt.Errorf("%s: %w", name, ErrNoRawDump)
	}
	if crc := binary.LittleEndian.Uint32(b[rawHeaderBytes:]); crc != crc32.ChecksumIEEE(b[:rawHeaderBytes]) {
		return nil, fmt.Errorf("%s: the raw dump header is damaged (crc32 %#x, want %#x)", name, crc32.ChecksumIEEE(b[:rawHeaderBytes]), crc)
	}
	if v := binary.LittleEndian.Uint32(b[16:]); v != rawVersion {
		return nil, fmt.Errorf("%s: raw dump header version %d; this salvage reads version %d", name, v, rawVersion)
	}
	h := &RawHeader{Complete: binary.LittleEndian.Uint32(b[20:])&rawFlagDone != 0,
		StreamOff: binary.LittleEndian.Uint64(b[24:]), StreamLen: binary.LittleEndian.Uint64(b[32:]),
		DmesgOff: binary.LittleEndian.Uint64(b[40:]), DmesgLen: binary.LittleEndian.Uint64(b[48:]),
		Stamp: cString(b[56:88]), Release: cString(b[88:153]), Device: name}
	if !IsDumpDir(h.Stamp) {
		return nil, fmt.Errorf("%s: the raw dump header's stamp %q is not YYYYMMDDHHMM", name, h.Stamp)
	}
	if h.StreamOff < rawHeaderSize {
		return nil, fmt.Errorf("%s: the raw dump header puts the stream at %d, inside the header", name, h.StreamOff)
	}
	return h, nil
}

// ClearRawHeader overwrites the header, so that the same dump is not
// saved twice.
func ClearRawHeader(w io.WriterAt) error {
	_, err := w.WriteAt(make([]byte, rawHeaderSize), 0)
	return err
}

// countWriter counts what passes through to an io.Writer.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteRawDump writes the dump of src to the block device dev as a
// flattened stream after a header: first the header marked incomplete,
// then the stream and the kernel log (written by dmesg, may be nil), and
// the header again, complete, once they are synced.
func WriteRawDump(ctx context.Context, dev *os.File, src *dump.File, opt collect.Options, dmesg DmesgFunc, now time.Time) (*RawHeader, *collect.Result, error) {
	h := &RawHeader{StreamOff: rawHeaderSize, Stamp: Stamp(now), Device: dev.Name()}
	if src.VMCoreInfo != nil {
		h.Release = src.VMCoreInfo.OSRelease()
	}
	if _, err := dev.WriteAt(h.marshal(), 0); err != nil {
		return h, nil, fmt.Errorf("%s: writing the header: %w", dev.Name(), err)
	}
	cw := &countWriter{w: io.NewOffsetWriter(dev, int64(h.StreamOff))}
	bw := bufio.NewWriterSize(cw, 1<<20)
	res, err := collect.CollectStream(ctx, src, bw, opt)
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return h, res, fmt.Errorf("%s: %w (the device holds an incomplete dump)", dev.Name(), err)
	}
	h.StreamLen = uint64(cw.n)
	if dmesg != nil {
		h.DmesgOff = (h.StreamOff + h.StreamLen + rawHeaderSize - 1) / rawHeaderSize * rawHeaderSize
		var buf bytes.Buffer
		if err := dmesg(&buf, src); err == nil {
			if _, err := dev.WriteAt(buf.Bytes(), int64(h.DmesgOff)); err == nil {
				h.DmesgLen = uint64(buf.Len())
			}
		}
		if h.DmesgLen == 0 {
			h.DmesgOff = 0
		}
	}
	if err := dev.Sync(); err != nil {
		return h, res, fmt.Errorf("%s: sync: %w", dev.Name(), err)
	}
	h.Complete = true
	if _, err := dev.WriteAt(h.marshal(), 0); err != nil {
		return h, res, fmt.Errorf("%s: writing the header: %w", dev.Name(), err)
	}
	if err := dev.Sync(); err != nil {
		return h, res, fmt.Errorf("%s: sync: %w", dev.Name(), err)
	}
	return h, res, nil
}

// String describes the header for messages.
func (h *RawHeader) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dump of %s taken %s, %d bytes of flattened stream", orUnknown(h.Release), h.Stamp, h.StreamLen)
	if !h.Complete {
		b.WriteString(", incomplete")
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown kernel"
	}
	return s
}
