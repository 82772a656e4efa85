package dump

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"io"
	"os"
	"sort"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"salvage/dump/lzo"
)

// This file builds kdump-compressed and flattened files in memory, laid
// out the way makedumpfile's write_kdump_header and
// write_kdump_pages_and_bitmap_cyclic lay them out, for the edge cases the
// real corpus does not have (every header version, every codec, split
// ranges, incomplete dumps, corrupted fields).

// realTestPage is a page of a real guest's memory from testdata/realpages.bin.gz:
// pages of Debian's 6.1.0-56-cloud-amd64 kernel, taken from a QEMU dump and
// chosen to span compressibility.
type realTestPage struct {
	addr uint64
	data []byte
}

func loadRealPages(t testing.TB) []realTestPage {
	t.Helper()
	fh, err := os.Open("testdata/realpages.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out []realTestPage
	for len(b) >= 8+4096 {
		out = append(out, realTestPage{addr: binary.LittleEndian.Uint64(b), data: b[8 : 8+4096]})
		b = b[8+4096:]
	}
	return out
}

// lzoBlocks returns liblzo2's lzo1x_1 blocks of 4096-byte pages, from the
// lzo package's test vectors, keyed by the page they decode to.
func lzoBlocks(t testing.TB) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile("lzo/testdata/vectors.bin")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint16(b))
		b = b[2+n:]
		level := b[0]
		plain := int(binary.LittleEndian.Uint32(b[1:]))
		bl := int(binary.LittleEndian.Uint32(b[37:]))
		block := b[41 : 41+bl]
		b = b[41+bl:]
		if level != 1 || plain != 4096 {
			continue
		}
		page := make([]byte, plain)
		if _, err := lzo.Decompress(page, block); err != nil {
			t.Fatal(err)
		}
		out[string(page)] = block
	}
	return out
}

// compressPage encodes a page the way the producers do; ok is false when
// the codec cannot be produced here (lzo for a page with no liblzo2 block).
func compressPage(t testing.TB, page []byte, codec string, lzoByPage map[string][]byte) ([]byte, uint32, bool) {
	t.Helper()
	switch codec {
	case "none":
		return page, 0, true
	case "zlib":
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, zlib.BestSpeed)
		w.Write(page)
		w.Close()
		return b.Bytes(), kdumpZlib, true
	case "lzo":
		block, ok := lzoByPage[string(page)]
		return block, kdumpLZO, ok
	case "snappy":
		return s2.EncodeSnappy(nil, page), kdumpSnappy, true
	case "zstd":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(page, nil), kdumpZstd, true
	}
	t.Fatalf("unknown codec %q", codec)
	return nil, 0, false
}

// synthPage is one dumped page: nil data is a zero page (shared zero page
// descriptor); enc is the encoded data and flags its descriptor flags.
type synthPage struct {
	data  []byte
	enc   []byte
	flags uint32
}

// synthDump describes a kdump-compressed file to build.
type synthDump struct {
	version   int32
	blockSize int
	maxMapnr  uint64
	machine   string
	status    uint32
	dumpLevel int32
	nrCPUs    int32
	ram       []Range // PFN ranges in the 1st bitmap
	pages     map[uint64]synthPage
	notes     []byte // ELF notes for offset_note
	vmcore    []byte // VMCOREINFO text, at offset_vmcoreinfo
	split     bool
	start     uint64 // split: [start, end)
	end       uint64
	// dropDescs leaves the descriptors of these PFNs zeroed, as an
	// interrupted makedumpfile does.
	dropDescs map[uint64]bool
}

// build lays the file out; it returns the bytes and the offset of the
// descriptor table.
func (s *synthDump) build() (out []byte, descOff int64) {
	bs := s.blockSize
	le := binary.LittleEndian
	hdr := make([]byte, bs)
	copy(hdr, kdumpSignature)
	le.PutUint32(hdr[8:], uint32(s.version))
	copy(hdr[12:], "Linux")
	copy(hdr[77:], "synthetic")
	copy(hdr[142:], "6.1.0-56-cloud-amd64")
	copy(hdr[207:], "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2")
	copy(hdr[272:], s.machine)
	le.PutUint64(hdr[408:], 1700000000)
	le.PutUint32(hdr[424:], s.status)
	le.PutUint32(hdr[428:], uint32(bs))
	subLen := kdumpSubHeaderSize + len(s.notes) + len(s.vmcore)
	subBlocks := (subLen + bs - 1) / bs
	le.PutUint32(hdr[432:], uint32(subBlocks))
	bitmapBytes := int((s.maxMapnr + 7) / 8)
	bitmapBlocks := 2 * ((bitmapBytes + bs - 1) / bs)
	le.PutUint32(hdr[436:], uint32(bitmapBlocks))
	le.PutUint32(hdr[440:], uint32(min(s.maxMapnr, 1<<32-1)))
	le.PutUint32(hdr[460:], uint32(s.nrCPUs))

	sub := make([]byte, subBlocks*bs)
	le.PutUint64(sub[0:], 0x1000000)
	le.PutUint32(sub[8:], uint32(s.dumpLevel))
	if s.split {
		le.PutUint32(sub[12:], 1)
		le.PutUint64(sub[16:], s.start)
		le.PutUint64(sub[24:], s.end)
		le.PutUint64(sub[80:], s.start)
		le.PutUint64(sub[88:], s.end)
	}
	if len(s.notes) > 0 {
		le.PutUint64(sub[48:], uint64(bs+kdumpSubHeaderSize))
		le.PutUint64(sub[56:], uint64(len(s.notes)))
		copy(sub[kdumpSubHeaderSize:], s.notes)
	}
	if len(s.vmcore) > 0 {
		off := kdumpSubHeaderSize + len(s.notes)
		le.PutUint64(sub[32:], uint64(bs+off))
		le.PutUint64(sub[40:], uint64(len(s.vmcore)))
		copy(sub[off:], s.vmcore)
	}
	le.PutUint64(sub[96:], s.maxMapnr)
	if s.version < 6 {
		clear(sub[80:104])
	}

	bitmaps := make([]byte, bitmapBlocks*bs)
	half := bitmapBlocks * bs / 2
	for _, r := range s.ram {
		for pfn := r.Start; pfn < r.End; pfn++ {
			bitmaps[pfn/8] |= 1 << (pfn % 8)
		}
	}
	var pfns []uint64
	for pfn := range s.pages {
		pfns = append(pfns, pfn)
		bitmaps[half+int(pfn/8)] |= 1 << (pfn % 8)
	}
	sort.Slice(pfns, func(i, j int) bool { return pfns[i] < pfns[j] })

	out = append(append(hdr, sub...), bitmaps...)
	descOff = int64(len(out))
	dataOff := descOff + int64(pageDescSize*len(pfns))
	var descs, data []byte
	zeroOff := int64(-1)
	for _, p := range pfns {
		if s.pages[p].data == nil {
			zeroOff = dataOff
			data = append(data, make([]byte, bs)...)
			break
		}
	}
	for _, pfn := range pfns {
		if s.split && (pfn < s.start || pfn >= s.end) {
			continue
		}
		p := s.pages[pfn]
		d := make([]byte, pageDescSize)
		switch {
		case s.dropDescs[pfn]:
		case p.data == nil:
			le.PutUint64(d[0:], uint64(zeroOff))
			le.PutUint32(d[8:], uint32(bs))
		default:
			le.PutUint64(d[0:], uint64(dataOff+int64(len(data))))
			le.PutUint32(d[8:], uint32(len(p.enc)))
			le.PutUint32(d[12:], p.flags)
			data = append(data, p.enc...)
		}
		descs = append(descs, d...)
	}
	descs = append(descs, make([]byte, pageDescSize*len(pfns)-len(descs))...)
	out = append(append(out, descs...), data...)
	return out, descOff
}

// flattenForTest turns a file into a flattened stream: records of at most chunk
// bytes, in the order given by perm (nil: in order), skipping all-zero
// chunks as makedumpfile skips bytes it never writes.
func flattenForTest(file []byte, chunk int, perm func(n int) []int) []byte {
	hdr := make([]byte, flatHeaderSize)
	copy(hdr, flatSignature)
	binary.BigEndian.PutUint64(hdr[16:], 1)
	binary.BigEndian.PutUint64(hdr[24:], 1)
	var recs [][2]int
	for off := 0; off < len(file); off += chunk {
		end := min(off+chunk, len(file))
		if isZeroPage(file[off:end]) && end != len(file) {
			continue
		}
		recs = append(recs, [2]int{off, end})
	}
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	if perm != nil {
		order = perm(len(recs))
	}
	out := hdr
	for _, i := range order {
		r := recs[i]
		var h [16]byte
		binary.BigEndian.PutUint64(h[0:], uint64(r[0]))
		binary.BigEndian.PutUint64(h[8:], uint64(r[1]-r[0]))
		out = append(append(out, h[:]...), file[r[0]:r[1]]...)
	}
	end := bytes.Repeat([]byte{0xff}, 16)
	return append(out, end...)
}
