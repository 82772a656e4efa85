package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// The kdump-compressed layout, block by block (makedumpfile's
// diskdump_mod.h; QEMU's dump/dump.c create_kdump_vmcore draws the same):
//
//	block 0                        struct disk_dump_header
//	block 1 … sub_hdr_size         struct kdump_sub_header, then the ELF notes
//	next bitmap_blocks blocks      1st bitmap (RAM), then 2nd bitmap (dumped)
//	then                           struct page_desc per dumped page, PFN order
//	then                           page data (the shared zero page first)
//
// The structs are written in the producer's native layout. salvage reads
// the LP64 little-endian layout of x86_64 and arm64.

// Status bits of disk_dump_header.status and flags of page_desc.flags
// (DUMP_DH_*, diskdump_mod.h).
const (
	kdumpZlib       = 0x1
	kdumpLZO        = 0x2
	kdumpSnappy     = 0x4
	kdumpIncomplete = 0x8  // header status only
	kdumpExcludedVM = 0x10 // header status only: unused vmemmap excluded (-e)
	kdumpZstd       = 0x20

	kdumpCodecMask = kdumpZlib | kdumpLZO | kdumpSnappy | kdumpZstd
)

// Sizes of the LP64 structs.
const (
	kdumpHeaderSize    = 464 // struct disk_dump_header
	kdumpSubHeaderSize = 104 // struct kdump_sub_header, header version 6
	pageDescSize       = 24  // struct page_desc
)

// kdumpHeader is struct disk_dump_header (LP64 layout; the offsets are
// those of the C struct, with struct timeval aligned to 8 at 408).
type kdumpHeader struct {
	Version        int32  // header_version, at 8
	Sysname        string // utsname.sysname, at 12 (six 65-byte fields)
	Nodename       string
	Release        string
	UTSVersion     string
	Machine        string // utsname.machine, at 272
	Timestamp      int64  // timestamp.tv_sec, at 408
	Status         uint32 // at 424
	BlockSize      int32  // at 428: the page size
	SubHdrSize     int32  // at 432, in blocks
	BitmapBlocks   uint32 // at 436: both bitmaps, in blocks
	MaxMapnr32     uint32 // at 440: max_mapnr, truncated to 32 bits
	TotalRAMBlocks uint32 // at 444
	DeviceBlocks   uint32 // at 448
	WrittenBlocks  uint32 // at 452
	CurrentCPU     uint32 // at 456
	NrCPUs         int32  // at 460
}

// kdumpSubHeader is struct kdump_sub_header (LP64). Fields appear with
// header versions: dump_level in 1, split and the 32-bit PFN range in 2,
// VMCOREINFO in 3, notes in 4, eraseinfo in 5, 64-bit PFNs in 6.
type kdumpSubHeader struct {
	PhysBase         uint64 // at 0
	DumpLevel        int32  // at 8
	Split            int32  // at 12
	StartPFN32       uint64 // at 16
	EndPFN32         uint64 // at 24
	OffsetVMCoreInfo int64  // at 32
	SizeVMCoreInfo   uint64 // at 40
	OffsetNote       int64  // at 48
	SizeNote         uint64 // at 56
	OffsetEraseInfo  int64  // at 64
	SizeEraseInfo    uint64 // at 72
	StartPFN64       uint64 // at 80
	EndPFN64         uint64 // at 88
	MaxMapnr64       uint64 // at 96
}

func kdumpCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func parseKdumpHeader(b []byte) kdumpHeader {
	le := binary.LittleEndian
	uts := func(i int) string { return kdumpCString(b[12+65*i : 12+65*(i+1)]) }
	return kdumpHeader{
		Version:        int32(le.Uint32(b[8:])),
		Sysname:        uts(0),
		Nodename:       uts(1),
		Release:        uts(2),
		UTSVersion:     uts(3),
		Machine:        uts(4),
		Timestamp:      int64(le.Uint64(b[408:])),
		Status:         le.Uint32(b[424:]),
		BlockSize:      int32(le.Uint32(b[428:])),
		SubHdrSize:     int32(le.Uint32(b[432:])),
		BitmapBlocks:   le.Uint32(b[436:]),
		MaxMapnr32:     le.Uint32(b[440:]),
		TotalRAMBlocks: le.Uint32(b[444:]),
		DeviceBlocks:   le.Uint32(b[448:]),
		WrittenBlocks:  le.Uint32(b[452:]),
		CurrentCPU:     le.Uint32(b[456:]),
		NrCPUs:         int32(le.Uint32(b[460:])),
	}
}

// parseKdumpSubHeader decodes the fields that exist in header version v;
// the others stay zero (older producers left garbage-free zeroes there,
// but a version-2 file may hold anything after its last field).
func parseKdumpSubHeader(b []byte, v int32) kdumpSubHeader {
	le := binary.LittleEndian
	var s kdumpSubHeader
	s.PhysBase = le.Uint64(b[0:])
	if v >= 1 {
		s.DumpLevel = int32(le.Uint32(b[8:]))
	}
	if v >= 2 {
		s.Split = int32(le.Uint32(b[12:]))
		s.StartPFN32 = le.Uint64(b[16:])
		s.EndPFN32 = le.Uint64(b[24:])
	}
	if v >= 3 {
		s.OffsetVMCoreInfo = int64(le.Uint64(b[32:]))
		s.SizeVMCoreInfo = le.Uint64(b[40:])
	}
	if v >= 4 {
		s.OffsetNote = int64(le.Uint64(b[48:]))
		s.SizeNote = le.Uint64(b[56:])
	}
	if v >= 5 {
		s.OffsetEraseInfo = int64(le.Uint64(b[64:]))
		s.SizeEraseInfo = le.Uint64(b[72:])
	}
	if v >= 6 {
		s.StartPFN64 = le.Uint64(b[80:])
		s.EndPFN64 = le.Uint64(b[88:])
		s.MaxMapnr64 = le.Uint64(b[96:])
	}
	return s
}

// kdumpLayout is everything openKdump learns from the two headers, checked
// against the file size.
type kdumpLayout struct {
	hdr  kdumpHeader
	sub  kdumpSubHeader
	arch Arch

	blockSize    int64
	maxMapnr     uint64 // page frames the bitmaps describe
	bitmapOff    int64  // offset of the 1st bitmap
	bitmapLen    int64  // length of ONE bitmap
	descOff      int64  // offset of the page_desc table
	split        bool
	startPFN     uint64 // split parts: [startPFN, endPFN)
	endPFN       uint64
	incomplete   bool
	excludedVMem bool
}

// readKdumpLayout reads and checks the headers of a kdump-compressed file.
// Every offset and size is checked against size, so nothing later can
// allocate or seek beyond the file because of a bogus header field.
func readKdumpLayout(r io.ReaderAt, size int64, name string) (*kdumpLayout, error) {
	ferr := func(off int64, format string, a ...any) error {
		return &FormatError{File: name, Off: off, Msg: "kdump-compressed: " + fmt.Sprintf(format, a...)}
	}
	if size < kdumpHeaderSize {
		return nil, ferr(0, "file is %d bytes, shorter than the %d-byte disk_dump_header", size, kdumpHeaderSize)
	}
	var hb [kdumpHeaderSize]byte
	if err := kdumpRead(r, hb[:], 0, name); err != nil {
		return nil, err
	}
	h := parseKdumpHeader(hb[:])
	l := &kdumpLayout{hdr: h}

	if h.Version < 0 || h.Version > 6 {
		return nil, ferr(8, "unsupported header_version %d (expected 0–6; big-endian and 32-bit producers are not supported)", h.Version)
	}
	bs := int64(h.BlockSize)
	if bs < 1024 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, ferr(428, "block_size %d is not a page size (a power of two, 1 KiB–1 MiB)", h.BlockSize)
	}
	l.blockSize = bs
	switch h.Machine {
	case "x86_64":
		l.arch = ArchX86_64
	case "aarch64", "arm64":
		l.arch = ArchARM64
	default:
		return nil, ferr(272, "unsupported machine %q in utsname (salvage reads x86_64 and aarch64 dumps)", h.Machine)
	}
	if h.SubHdrSize < 0 || h.BitmapBlocks == 0 {
		return nil, ferr(432, "sub_hdr_size %d, bitmap_blocks %d: no room for the sub-header and bitmaps", h.SubHdrSize, h.BitmapBlocks)
	}
	// Block counts times the block size, bounded by the file size before
	// any multiplication can overflow.
	blocks := size/bs + 1
	if int64(h.SubHdrSize) > blocks || int64(h.BitmapBlocks) > blocks {
		return nil, ferr(432, "sub_hdr_size %d and bitmap_blocks %d blocks of %d bytes go beyond the %d-byte file", h.SubHdrSize, h.BitmapBlocks, bs, size)
	}
	l.bitmapOff = (1 + int64(h.SubHdrSize)) * bs
	l.bitmapLen = int64(h.BitmapBlocks) * bs / 2
	l.descOff = l.bitmapOff + 2*l.bitmapLen
	if l.descOff > size {
		return nil, ferr(l.bitmapOff, "the bitmaps (%d blocks at block %d) go beyond the end of the %d-byte file: truncated", h.BitmapBlocks, 1+h.SubHdrSize, size)
	}

	if h.Version >= 1 && h.SubHdrSize > 0 {
		var sb [kdumpSubHeaderSize]byte
		if err := kdumpRead(r, sb[:], bs, name); err != nil {
			return nil, err
		}
		l.sub = parseKdumpSubHeader(sb[:], h.Version)
	}
	l.maxMapnr = uint64(h.MaxMapnr32)
	if h.Version >= 6 {
		l.maxMapnr = l.sub.MaxMapnr64
	}
	if bits := uint64(l.bitmapLen) * 8; l.maxMapnr > bits {
		// A bitmap cannot describe more frames than it has bits; the
		// frames past it are reported as not RAM.
		l.maxMapnr = bits
	}
	l.incomplete = h.Status&kdumpIncomplete != 0
	l.excludedVMem = h.Status&kdumpExcludedVM != 0

	if h.Version >= 2 && l.sub.Split != 0 {
		l.split = true
		l.startPFN, l.endPFN = l.sub.StartPFN32, l.sub.EndPFN32
		if h.Version >= 6 {
			l.startPFN, l.endPFN = l.sub.StartPFN64, l.sub.EndPFN64
		}
		if l.startPFN > l.endPFN || l.endPFN > l.maxMapnr {
			return nil, ferr(bs+16, "split part holds PFNs [%#x, %#x), not within max_mapnr %#x", l.startPFN, l.endPFN, l.maxMapnr)
		}
	} else {
		l.startPFN, l.endPFN = 0, l.maxMapnr
	}
	return l, nil
}

// kdumpRead reads len(b) bytes at off, turning a short read into a
// FormatError that says the file is truncated.
func kdumpRead(r io.ReaderAt, b []byte, off int64, name string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return &FormatError{File: name, Off: off, Msg: fmt.Sprintf("file ends %d bytes into a %d-byte read: truncated", n, len(b))}
	}
	return fmt.Errorf("%s: read %d bytes at offset %#x: %w", name, len(b), off, err)
}
